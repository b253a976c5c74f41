"""The CLI as an operator drives it: tokens, listings in three formats, the failed list and replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from channels.base import InboxItem
from gateway.app import Gateway
from gateway.audit import REPLAY
from gateway.audit import recent as recent_audit
from gateway.auth import authenticate
from gateway.cli import app
from normalizer.errors import AuthError
from sinks.store.db import Store
from tests.support.server import write_config

runner = CliRunner()


@pytest.fixture
def config_path(db_url: str, tmp_path: Path) -> Path:
    return write_config(tmp_path, db_url, 8080)


def run(config_path: Path, *args: str) -> str:
    result = runner.invoke(app, ["--config", str(config_path), *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_tokens_are_shown_once_stored_hashed_and_revocable(config_path: Path, store: Store) -> None:
    token = run(config_path, "tokens", "create", "--name", "siti", "--role", "agent").strip().splitlines()[-1]

    assert token.startswith("lpr_")
    assert authenticate(store, token).role == "agent"
    with store.read() as session:
        from sqlalchemy import text

        stored = session.execute(text("SELECT token_hash FROM api_token")).scalar_one()
    assert token not in stored and len(stored) == 64

    assert "revoked 1" in run(config_path, "tokens", "revoke", "--name", "siti")
    with pytest.raises(AuthError):
        authenticate(store, token)
    assert runner.invoke(app, ["--config", str(config_path), "tokens", "revoke", "--name", "siti"]).exit_code == 1


def test_unknown_role_is_refused(config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "tokens", "create", "--name", "x", "--role", "boss"])
    assert result.exit_code != 0


def process(gateway: Gateway, *raws: bytes) -> None:
    import asyncio

    gateway.inbox.start()
    try:
        for number, raw in enumerate(raws):
            gateway.inbox.accept_blocking(
                InboxItem("manual", "callcenter", f"cli-{number}", raw, meta={"entered_by": "siti"})
            )
        asyncio.run(gateway.worker.run_until_idle())
    finally:
        gateway.inbox.stop()


def test_complaints_list_and_show_in_every_format(config_path: Path, gateway: Gateway) -> None:
    process(gateway, json.dumps({"body": "Banjir di Kampung Melayu", "source": "phone"}).encode())

    as_json = json.loads(run(config_path, "complaints", "list", "--format", "json"))
    [line] = run(config_path, "complaints", "list", "--format", "jsonl").splitlines()
    table = run(config_path, "complaints", "list", "--format", "table")
    tracking_id = as_json[0]["tracking_id"]

    assert json.loads(line) == as_json[0]
    assert tracking_id in table and "Banjir" in table
    assert (
        json.loads(run(config_path, "complaints", "show", tracking_id.lower()))[0]["body"] == "Banjir di Kampung Melayu"
    )
    assert json.loads(run(config_path, "complaints", "list", "--format", "json", "--q", "kemarau")) == []
    missing = runner.invoke(app, ["--config", str(config_path), "complaints", "show", "LPR-ZZZZZZ"])
    assert missing.exit_code == 1


def test_failed_list_show_and_replay(config_path: Path, gateway: Gateway) -> None:
    process(gateway, b'{"source": "phone"}')

    [failed] = json.loads(run(config_path, "failed", "list", "--format", "json"))
    assert failed["id"] == "inbox-1" and failed["attempts"] == 1
    [shown] = json.loads(run(config_path, "failed", "show", "inbox-1"))
    assert shown["raw_text"] == '{"source": "phone"}' and "body" in shown["error"]
    assert "PayloadError" in run(config_path, "failed", "replay", "inbox-1", "--dry-run")
    assert "pending again" in run(config_path, "failed", "replay", "inbox-1")
    [entry] = recent_audit(gateway.store)
    assert (entry.action, entry.target, entry.result) == (REPLAY, "inbox-1", "pending")
    assert entry.actor.startswith("cli:")
    assert json.loads(run(config_path, "failed", "list", "--format", "json")) == []
    again = runner.invoke(app, ["--config", str(config_path), "failed", "replay", "inbox-1"])
    assert again.exit_code == 1
