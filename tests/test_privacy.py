"""UU PDP: anonymous reporters leave no identity in raw rows; a reporter can be forgotten (both stores)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from channels.base import InboxItem
from channels.email.mime import inbox_item as mail_item
from channels.telegram.edge import inbox_item as telegram_item
from gateway.app import Gateway
from gateway.audit import recent
from gateway.cli import app
from gateway.config import Config
from gateway.context import DatabaseState
from gateway.forget import FORGET, forget
from sinks.store.db import Store
from sinks.store.models import Complaint, InboxMessage, OutboxMessage
from tests.channels.telegram_fakes import BOT_ID, TOKEN
from tests.conftest import bearer
from tests.support.server import write_config

PAYLOADS = Path(__file__).parent / "payloads"
BUDI = {"name": "Budi Santoso", "phone": "0812-3456-7890", "email": "budi@contoh.id"}


def _raw_rows(store: Store) -> list[bytes]:
    with store.read() as session:
        return [row.raw for row in session.execute(select(InboxMessage)).scalars()]


def test_an_anonymous_manual_entry_keeps_no_identity_in_its_raw_row(
    client: TestClient, agent_token: str, store: Store
) -> None:
    entry = {"body": "Pungli di loket", "source": "phone", "reporter": {**BUDI, "anonymity": "anonymous"}}
    first = client.post("/api/v1/complaints", json=entry, headers={**bearer(agent_token), "Idempotency-Key": "a1"})
    assert first.status_code == 201
    assert first.json()["reporter"]["name"] is None
    [raw] = _raw_rows(store)
    for identity in ("Budi", "3456", "budi@contoh.id"):
        assert identity.encode() not in raw
    assert json.loads(raw)["reporter"] == {"anonymity": "anonymous"}
    # The same entry under the same key is still recognised as the same (not "key reused").
    again = client.post("/api/v1/complaints", json=entry, headers={**bearer(agent_token), "Idempotency-Key": "a1"})
    assert again.status_code == 201 and again.json()["tracking_id"] == first.json()["tracking_id"]


def test_numbers_and_addresses_an_anonymous_reporter_typed_into_the_text_are_kept_nowhere(
    client: TestClient, agent_token: str, store: Store
) -> None:
    entry = {
        "body": "Pungli di loket, hubungi saya 0812-3456-7890 atau budi@contoh.id, NIK 3201234567890123",
        "subject": "Pungli, WA 081234567890",
        "source": "phone",
        "location": {"text": "rumah budi@contoh.id"},
        "reporter": {"anonymity": "anonymous"},
    }
    created = client.post("/api/v1/complaints", json=entry, headers=bearer(agent_token))
    assert created.status_code == 201
    record = created.json()
    [raw] = _raw_rows(store)
    for typed in ("0812-3456-7890", "081234567890", "budi@contoh.id", "3201234567890123"):
        assert typed.encode() not in raw  # the raw row (failed list, replay) ...
        assert typed not in json.dumps(record)  # ... and the record alike
    assert "[PHONE_1]" in json.loads(raw)["body"] and "[PHONE_1]" in record["body"]


def test_the_failed_api_and_cli_show_only_failed_rows(
    client: TestClient, agent_token: str, admin_token: str, db_url: str, tmp_path: Path
) -> None:
    done = client.post(
        "/api/v1/complaints",
        json={"body": "Lampu mati", "source": "phone", "reporter": BUDI},
        headers=bearer(agent_token),
    ).json()
    response = client.get(f"/api/v1/failed/inbox-{done['inbox_id']}", headers=bearer(admin_token))
    assert response.status_code == 404
    assert response.json()["detail"] == f"no failed message inbox-{done['inbox_id']}"
    result = CliRunner().invoke(
        app, ["--config", str(write_config(tmp_path, db_url, 8080)), "failed", "show", f"inbox-{done['inbox_id']}"]
    )
    assert result.exit_code == 1
    assert "Budi" not in result.output


def _mail(sender: str, body: str, attachment_name: str) -> bytes:
    picture = base64.b64encode(b"\x89PNG foto selokan").decode()
    return (
        f"Message-ID: <{attachment_name}@contoh.id>\r\nFrom: {sender}\r\nTo: lapor@lapor.localhost\r\n"
        "Subject: Selokan mampet\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f'--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="{attachment_name}"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{picture}\r\n--b--\r\n"
    ).encode()


def _stored(gateway: Gateway, *items: InboxItem) -> None:
    gateway.inbox.start()
    try:
        for item in items:
            gateway.inbox.accept_blocking(item)
    finally:
        gateway.inbox.stop()
    asyncio.run(gateway.worker.run_until_idle())


def _snapshot(store: Store) -> dict[str, Any]:
    with store.read() as session:
        return {
            "complaints": [
                (c.reporter_name, c.reporter_email, c.reply_address, c.body, c.attachments)
                for c in session.execute(select(Complaint).order_by(Complaint.id)).scalars()  # type: ignore[arg-type]
            ],
            "inbox": [
                (r.raw, r.headers, r.meta)
                for r in session.execute(select(InboxMessage).order_by(InboxMessage.id)).scalars()  # type: ignore[arg-type]
            ],
            "outbox": [
                r.payload
                for r in session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()  # type: ignore[arg-type]
            ],
        }


def test_forgetting_an_email_reporter_removes_every_trace_and_keeps_the_complaint(
    make_config: Callable[..., Config], store: Store
) -> None:
    # Acknowledged without authentication here, so there are acknowledgements (and their counters) to scrub.
    config = make_config(channels={"smtp": {"enabled": False, "acknowledge_unauthenticated": True}})
    gateway = Gateway(config, store)
    dewi = _mail(
        "Dewi Lestari <Dewi@Contoh.id>",
        "Selokan mampet di RT 03. Kabari saya di dewi@contoh.id.",
        "foto-dewi@contoh.id.png",
    )
    other = _mail("Andi <andi@contoh.id>", "Dewi Lestari juga melihat selokan itu.", "andi.png")
    _stored(gateway, mail_item(dewi, {"mail_from": "dewi@contoh.id"}, "smtp"), mail_item(other, {}, "smtp"))
    before = _snapshot(store)
    assert len(before["complaints"]) == 2 and len(before["outbox"]) == 2  # the acknowledgements
    assert DatabaseState(store).get("email:acks:dewi@contoh.id") is not None

    planned = forget(store, "rina", email="DEWI@contoh.id", dry_run=True)
    assert _snapshot(store) == before  # a dry run changes nothing
    assert len(planned.complaints) == 1 and planned.attachments == 1 and len(planned.inbox_rows) == 1

    done = forget(store, "rina", email="dewi@contoh.id")
    assert done.summary() == planned.summary()
    after = _snapshot(store)
    mine, theirs = after["complaints"]
    assert mine[:3] == (None, None, None)
    assert mine[3].startswith("Selokan mampet di RT 03.") and "dewi@contoh.id" not in mine[3].lower()
    assert "contoh.id" not in json.dumps(mine[4]).replace("andi", "")
    assert theirs == before["complaints"][1]  # another citizen's mention of a namesake stays
    flat = (
        json.dumps([after["inbox"][0][1:], after["outbox"]], default=str).lower()
        + after["inbox"][0][0].decode().lower()
    )
    assert "dewi@contoh.id" not in flat and "dewi lestari" not in flat
    assert b"andi@contoh.id" in after["inbox"][1][0]
    assert DatabaseState(store).get("email:acks:dewi@contoh.id") is None
    assert done.state_keys == 1
    [entry, dry] = [e for e in recent(store) if e.action == FORGET]
    assert (entry.actor, entry.result, entry.target) == ("rina", "forgotten", "email:d***@contoh.id")
    assert dry.result == "dry_run"
    assert "dewi@contoh.id" not in json.dumps(entry.detail)


def test_forgetting_a_telegram_reporter_keeps_their_update_readable_json(
    make_config: Callable[..., Config], store: Store
) -> None:
    gateway = Gateway(
        make_config(
            channels={"smtp": {"enabled": False}, "telegram": {"token": TOKEN, "api_base": "http://127.0.0.1:9"}}
        ),
        store,
    )
    raw = (PAYLOADS / "telegram" / "text.json").read_bytes()
    _stored(gateway, telegram_item(raw, BOT_ID))
    forget(store, "rina", telegram_id="523901234")
    [kept] = _raw_rows(store)
    update = json.loads(kept)
    assert update["message"]["from"]["id"] == 0 and update["message"]["from"]["username"] == "dihapus"
    assert b"523901234" not in kept and b"Lestari" not in kept and b"dewi_lestari" not in kept
    with store.read() as session:
        [complaint] = session.execute(select(Complaint)).scalars()
    assert (complaint.reporter_telegram_id, complaint.reporter_name, complaint.reply_address) == (None, None, None)
    assert "drainase" in complaint.body


def test_reporters_forget_on_the_command_line_by_phone_any_spelling(
    client: TestClient, agent_token: str, store: Store, db_url: str, tmp_path: Path
) -> None:
    client.post(
        "/api/v1/complaints",
        json={"body": "Lampu mati", "source": "phone", "reporter": BUDI},
        headers=bearer(agent_token),
    )
    config = str(write_config(tmp_path, db_url, 8080))
    dry = CliRunner().invoke(
        app, ["--config", config, "reporters", "forget", "--phone", "+62 812 3456 7890", "--dry-run"]
    )
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["dry_run"] is True and len(json.loads(dry.output)["complaints"]) == 1
    assert b"3456" in _raw_rows(store)[0]
    done = CliRunner().invoke(app, ["--config", config, "reporters", "forget", "--phone", "6281234567890"])
    assert done.exit_code == 0, done.output
    [raw] = _raw_rows(store)
    assert b"3456" not in raw and b"Budi" not in raw and b"budi@contoh.id" not in raw
    assert json.loads(raw)["body"] == "Lampu mati"
    both = CliRunner().invoke(app, ["--config", config, "reporters", "forget", "--phone", "0812", "--email", "a@b.c"])
    assert both.exit_code == 2 and "exactly one" in both.output
