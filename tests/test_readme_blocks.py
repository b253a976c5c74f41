"""The README's shell blocks, pasted as they are into bash in a fresh clone (as a new operator would).

The blocks are the ones fenced ```sh doc-test:<name>: ``setup`` (the two commands), ``try-it`` and
``postgresql`` (PostgreSQL with separate workers). ``make run`` really creates ``.venv`` with pip (pip's
own cache makes it quicker, nothing is copied in). What the test changes, and only that: the ports
8080 and 2525 become free ones (through a config.yaml beside the clone's Makefile for ``try-it``, by
replacing the numbers in the text for ``postgresql``), ``DATABASE_URL`` names a schema of this test's
own, and ``make test`` is told (``PYTEST_ADDOPTS``) to run one test file instead of the whole suite,
which would run this test again.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import postgres_schema
from tests.support.docs import ROOT, fenced_blocks
from tests.support.server import free_port

pytestmark = pytest.mark.slow

BLOCK_TIMEOUT_S = 900  # a first `make run` installs every dependency; the machine is shared
_TRACKING = re.compile(r'"tracking_id":\s*"(LPR-[0-9A-Z]+)"')


def readme_blocks() -> dict[str, str]:
    blocks = {}
    for block in fenced_blocks(ROOT / "README.md"):
        words = block.info.split()
        if len(words) == 2 and words[0] == "sh" and words[1].startswith("doc-test:"):
            blocks[words[1].removeprefix("doc-test:")] = block.text
    return blocks


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def user_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without this test run's virtualenv or config."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "LAPOR_GATEWAY_CONFIG", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in part)
    return {**env, **extra}


class Shell:
    """One pasted block: bash in its own process group, so what it left running is stopped after."""

    def __init__(self, clone: Path, name: str, text: str, env: dict[str, str]) -> None:
        self.output = clone.parent / f"{name}.out"
        script = clone.parent / f"{name}.sh"
        script.write_text("set -euo pipefail\n" + text)
        with open(self.output, "wb") as sink:
            self.process = subprocess.Popen(
                ["bash", str(script)], cwd=clone, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )

    def finish(self) -> str:
        try:
            returncode = self.process.wait(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"gave up after {BLOCK_TIMEOUT_S} s:\n{self.text()[-3000:]}") from None
        assert returncode == 0, self.text()[-3000:]
        return self.text()

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        os.killpg(self.process.pid, signal.SIGKILL)


def run_block(clone: Path, name: str, text: str, env: dict[str, str]) -> tuple[Shell, str]:
    shell = Shell(clone, name, text, env)
    try:
        return shell, shell.finish()
    except BaseException:
        shell.stop()
        raise


@pytest.mark.timeout(3 * BLOCK_TIMEOUT_S)
def test_the_readme_shell_blocks_run_in_a_fresh_clone(tmp_path: Path, postgres_url: str) -> None:
    blocks = readme_blocks()
    assert set(blocks) == {"setup", "try-it", "postgresql"}
    clone = tmp_path / "lapor-gateway"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    http, smtp = free_port(), free_port()

    def local(text: str) -> str:
        return text.replace("8080", str(http)).replace("2525", str(smtp))

    # "Try it in two minutes", as pasted; the ports come from a config.yaml (the block itself uses the defaults).
    (clone / "config.yaml").write_text(
        f"http:\n  port: {http}\n  public_url: http://127.0.0.1:{http}\nchannels:\n  smtp:\n    port: {smtp}\n"
    )
    shell, output = run_block(clone, "try-it", local(blocks["try-it"]), user_environment())
    try:
        found = _TRACKING.search(output)
        assert found, output[-3000:]
        tracking_id = found.group(1)
        assert output.count(tracking_id) >= 2, output[-3000:]  # the 201 record, then `complaints list`
        assert (clone / ".venv" / "bin" / "lapor-gateway").exists()
        assert (clone / "data" / "lapor.db").exists()
    finally:
        shell.stop()

    # The two commands: `make run` was the first line of "Try it"; `make test` runs lint and pytest.
    commands = [line.split("#")[0].strip() for line in blocks["setup"].splitlines() if line.split("#")[0].strip()]
    assert commands == ["make run", "make test"]
    env = user_environment(PYTEST_ADDOPTS="tests/gateway/test_config.py -q -p no:cacheprovider")
    shell, output = run_block(clone, "make-test", "make test\n", env)
    shell.stop()
    assert re.search(r"\d+ passed", output), output[-3000:]

    # PostgreSQL with separate workers: the recipe writes its own config.yaml and starts serve + 2 workers.
    (clone / "config.yaml").unlink()
    env = user_environment(DATABASE_URL=postgres_url)
    shell, output = run_block(clone, "postgresql", local(blocks["postgresql"]), env)
    try:
        assert output.count("lapor-gateway worker: database postgresql://") == 2, output[-3000:]
        token = subprocess.run(
            [".venv/bin/lapor-gateway", "tokens", "create", "--role", "agent", "--name", "ops"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.strip()
        answer = httpx.post(
            f"http://127.0.0.1:{http}/api/v1/complaints",
            json={"body": "Jalan berlubang di Jl. Merdeka", "source": "phone"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "docs-pg-1"},
            timeout=60,
        )
        # 201 means a worker process (serve has none of its own here) made the complaint in PostgreSQL.
        assert answer.status_code == 201, answer.text
        assert answer.json()["tracking_id"].startswith("LPR-")
    finally:
        shell.stop()
