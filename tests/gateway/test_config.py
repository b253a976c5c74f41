"""Configuration: unknown keys and bad values stop start-up with one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load_config
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
    assert config.database.url == "sqlite:///elsewhere.db"
    assert config.http.port == 9090


def test_env_references_in_comments_are_left_alone(tmp_path: Path) -> None:
    path = write(tmp_path, "# set ${NOT_SET} in production\nhttp:\n  port: 8081  # ${ALSO_NOT_SET}\n")
    assert load_config(path, environ={}).http.port == 8081


def test_a_missing_env_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TWILIO_AUTH_TOKEN is not set"):
        load_config(write(tmp_path, "http:\n  public_url: ${TWILIO_AUTH_TOKEN}\n"), environ={})


def test_no_file_means_the_embedded_defaults() -> None:
    config = load_config(None)
    assert config.database.url == "sqlite:///data/lapor.db"
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
