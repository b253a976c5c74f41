"""The disk under ``data/`` fills up (SQLite, the default store) under a steady load: the same "try later" as a
database outage, no corrupt database, and service again as soon as space is freed — without a restart.

The small file system is a tmpfs in a mount namespace of the rig's own (``unshare -rm``), see
``tests/support/small_fs.py``; the SQLite file, its WAL and the attachments live on it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sinks.store.health import STORE_RECOVERED, STORE_UNAVAILABLE
from tests.support.e2e import eventually
from tests.support.outage_load import Load, config_text, measure
from tests.support.server import free_port

pytestmark = pytest.mark.slow


class SmallDisk:
    def __init__(self, root: Path) -> None:
        self.mount = root / "small"
        self.mount.mkdir()
        self.port = free_port()
        self.config = root / "config.yaml"
        self.config.write_text(config_text(self.mount, f"sqlite:///{self.mount}/data/lapor.db", self.port))
        self.log = root / "gateway.log"
        self.log.touch()
        command = [sys.executable, "-m", "tests.support.small_fs", "--mount", str(self.mount), "--size", "3m"]
        self.rig = subprocess.Popen(
            ["unshare", "-rm", *command, "--config", str(self.config), "--log", str(self.log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        word, self.token = self._line().split()
        assert word == "token"

    def _line(self) -> str:
        assert self.rig.stdout is not None
        line = self.rig.stdout.readline()
        assert line, f"the small-disk rig ended: {self.log.read_text()[-2000:]}"
        return line.strip()

    def ask(self, command: str) -> str:
        assert self.rig.stdin is not None
        self.rig.stdin.write(command + "\n")
        self.rig.stdin.flush()
        return self._line()

    def close(self) -> None:
        if self.rig.stdin is not None:
            self.rig.stdin.close()
        self.rig.wait(timeout=120)


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_full_disk_is_try_later_corrupts_nothing_and_service_resumes_when_space_is_freed(tmp_path: Path) -> None:
    disk = SmallDisk(tmp_path)
    try:
        url = f"http://127.0.0.1:{disk.port}"
        eventually(lambda: _ready(url), "the gateway on the small disk", timeout=60)
        load = Load(url, disk.token, threads=4)
        figures = measure(load, disk.log, lambda: disk.ask("fill"), lambda: disk.ask("free"), outage_s=3.0)
        print(figures.as_json())
        assert disk.ask("stop").startswith("stopped")  # uvicorn re-raises SIGTERM after its graceful shutdown
        assert disk.ask("check") == "integrity ok"
        copy = tmp_path / "copy.db"
        assert disk.ask("copy " + str(copy)) == "copied"
    finally:
        disk.close()

    assert set(figures.answers) <= {201, 202, 503}, figures.answers
    assert figures.refused > 0 and figures.refused_without_retry_after == 0
    assert figures.events.get(STORE_UNAVAILABLE) == 1
    assert figures.events.get(STORE_RECOVERED) == 1
    assert figures.tracebacks == 0

    with sqlite3.connect(copy) as db:
        rows = db.execute("SELECT id, external_id, status FROM inbox").fetchall()
        per_row = Counter(inbox_id for (inbox_id,) in db.execute("SELECT inbox_id FROM complaint"))
    # Stopped while some were still pending is fine; every acknowledged key is there once, nothing else is.
    assert {external_id for _, external_id, _ in rows} == {f"beban:{key}" for key in load.acked}
    assert set(per_row.values()) <= {1}
    assert all(status in ("done", "pending", "processing") for _, _, status in rows)
