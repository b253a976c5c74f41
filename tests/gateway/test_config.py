"""Configuration: unknown keys and bad values stop start-up with one line naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import PROJECT_ROOT, load_config
from normalizer.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("database:\n  urll: sqlite:///x.db\n", "config: database.urll is not a known key"),
        ("databse: {}\n", "config: databse is not a known key"),
        ("http:\n  port: seventy\n", "config: http.port: Input should be a valid integer"),
        ("http:\n  public_url: example.org\n", "config: http.public_url: Value error, must start with http"),
        ("http:\n  timezone: Asia/Jakrta\n", "config: http.timezone: Value error, 'Asia/Jakrta' is not a time zone"),
        ("worker:\n  max_attempts: 0\n", "config: worker.max_attempts: Input should be greater than or equal to 1"),
        ("channels:\n  pigeon: {}\n", "config: channels.pigeon is not a known channel"),
        ("channels:\n  manual:\n    enabld: true\n", "config: channels.manual.enabld is not a known key"),
        ("- a\n- b\n", "must hold a mapping"),
        ("database: [\n", "is not valid YAML"),
        ("agencies:\n  dpupr: {name: PUPR, forward: pupr311}\n", "config: agencies.dpupr.forward names no sink"),
        (
            "sinks: [{name: a, url: 'http://x'}]\nagencies:\n  dpupr: {name: PUPR, forward: a}\n",
            "config: agencies.dpupr.forward: sink a carries status events only when signed",
        ),
        ("sinks: [{name: a, type: open311, endpoint: 'http://x'}]\n", "an open311 sink needs endpoint and api_key"),
        ("sinks: [{name: a, url: 'http://x', secret: nope}]\n", "secret must be a Standard Webhooks secret"),
        ("lifecycle:\n  verify_working_day: 3\n", "config: lifecycle.verify_working_day is not a known key"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, yaml_text), environ={})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_env_references_are_read_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: ${LAPOR_DB}\nhttp:\n  port: ${PORT}\n")
    config = load_config(path, environ={"LAPOR_DB": "sqlite:///elsewhere.db", "PORT": "9090"})
    assert config.database.url == f"sqlite:///{tmp_path.resolve()}/elsewhere.db"
    assert config.http.port == 9090


def test_env_references_in_comments_are_left_alone(tmp_path: Path) -> None:
    path = write(tmp_path, "# set ${NOT_SET} in production\nhttp:\n  port: 8081  # ${ALSO_NOT_SET}\n")
    assert load_config(path, environ={}).http.port == 8081


def test_a_missing_env_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TWILIO_AUTH_TOKEN is not set"):
        load_config(write(tmp_path, "http:\n  public_url: ${TWILIO_AUTH_TOKEN}\n"), environ={})


def test_no_file_means_the_embedded_defaults() -> None:
    config = load_config(None)
    assert config.database.url == f"sqlite:///{PROJECT_ROOT}/data/lapor.db"
    assert config.data_dir == PROJECT_ROOT / "data"
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8080)
    assert config.channel("manual").enabled
    assert "pungli" in config.categories


def test_the_cli_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  urll: sqlite:///x.db\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(path), "complaints", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "config: database.urll is not a known key"


def test_the_cli_reads_the_config_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "http:\n  port: nope\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"LAPOR_GATEWAY_CONFIG": str(path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith("config: http.port:")


def test_relative_paths_resolve_against_the_config_files_folder(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = write(tmp_path / "etc", "database:\n  url: sqlite:///store/lapor.db\ndata_dir: files\n")
    config = load_config(path, environ={})
    assert config.database.url == f"sqlite:///{tmp_path.resolve()}/etc/store/lapor.db"
    assert config.data_dir == tmp_path.resolve() / "etc" / "files"
    absolute = write(tmp_path, "database:\n  url: sqlite:////var/lib/lapor/lapor.db\n")
    assert load_config(absolute, environ={}).database.url == "sqlite:////var/lib/lapor/lapor.db"


TELEGRAM = "channels:\n  telegram:\n    enabled: ${TG_ON}\n    token: ${TELEGRAM_TOKEN}\n    mode: polling\n"


def test_commands_that_start_no_channel_need_no_channel_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: sqlite:///lapor.db\n" + TELEGRAM)
    assert not load_config(path, environ={}, channels=False).channel("telegram").enabled
    with pytest.raises(ConfigError, match=r"TG_ON is not set"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match=r"TELEGRAM_TOKEN is not set"):
        load_config(path, environ={"TG_ON": "true"})
    # A channel that is switched off never starts: its secrets are not asked for.
    assert not load_config(path, environ={"TG_ON": "false"}).channel("telegram").enabled


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if key not in ("TELEGRAM_TOKEN", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**environ, **(env or {})},
    )


def test_complaints_show_runs_without_the_channel_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: sqlite:///lapor.db\n" + TELEGRAM)
    fresh = run_cli(tmp_path, "--config", str(path), "complaints", "list", env={"TG_ON": "true"})
    assert fresh.returncode == 2
    [line] = fresh.stderr.splitlines()  # one line naming the database and what to do, no traceback
    assert line.startswith(f"database {tmp_path.resolve()}/lapor.db has no tables yet — run ")
    assert line.endswith("lapor-gateway db upgrade (serve does it too)")
    assert run_cli(tmp_path, "--config", str(path), "db", "upgrade", env={"TG_ON": "true"}).returncode == 0
    result = run_cli(tmp_path, "--config", str(path), "complaints", "show", "LPR-7K3Q9X", env={"TG_ON": "true"})
    assert result.returncode == 1, result.stderr  # no such complaint, but the config was fine
    assert result.stderr.strip() == "no complaint LPR-7K3Q9X"
    served = run_cli(tmp_path, "--config", str(path), "serve", env={"TG_ON": "true"})
    assert served.returncode == 2
    assert served.stderr.strip().endswith("the environment variable TELEGRAM_TOKEN is not set")


def test_a_long_config_error_stays_one_line_off_a_terminal(tmp_path: Path) -> None:
    deep = tmp_path / ("a-folder-with-a-long-name-" * 3)
    deep.mkdir()
    path = deep / "config.yaml"
    path.write_text("channels:\n  kannel:\n    enabled: true\n    sendsms_url_with_a_typo: http://x\n")
    result = run_cli(tmp_path, "--config", str(path), "serve", env={"COLUMNS": "80"})
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    missing = run_cli(tmp_path, "--config", str(tmp_path / ("missing-" * 12) / "config.yaml"), "complaints", "list")
    assert missing.returncode == 2
    [line] = missing.stderr.splitlines()
    assert len(line) > 80 and "does not exist" in line


def test_serve_and_worker_print_the_absolute_database_path(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = write(tmp_path / "etc", "database:\n  url: sqlite:///lapor.db\nlogging:\n  level: warning\n")
    upgraded = run_cli(tmp_path, "--config", str(path), "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"{tmp_path.resolve()}/etc/lapor.db" in upgraded.stdout
    assert (tmp_path / "etc" / "lapor.db").exists() and not (tmp_path / "lapor.db").exists()
    worker = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(path), "worker"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert worker.stderr is not None
        first = worker.stderr.readline()  # blocks until the worker says it started (or exits)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert first.startswith("lapor-gateway worker: database ")
    assert f"{tmp_path.resolve()}/etc/lapor.db" in first
