"""Retention: raw payloads and attachment bytes of rows finished ``retention.raw_days`` ago are purged — by the
workers' daily job and by ``lapor-gateway purge`` — keeping the complaint and the payload's provenance."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlmodel import col

from channels.base import InboxItem
from gateway.app import Gateway
from gateway.config import Config
from gateway.context import AttachmentFiles
from gateway.inbox import insert_inbox_row
from gateway.redact import REDACTED
from sinks.store.db import Store
from sinks.store.models import Complaint, InboxMessage, utcnow
from tests.support.server import cli, free_port, write_config


def _entry(store: Store, key: str) -> int:
    raw = json.dumps({"body": f"Saluran air tersumbat ({key})", "source": "phone"}).encode()
    item = InboxItem("manual", "callcenter", f"siti:{key}", raw, meta={"entered_by": "siti", "idempotency_key": key})
    with store.write() as session:
        return insert_inbox_row(session, item, utcnow()).inbox_id


def _age(store: Store, inbox_id: int, days: int, **values: object) -> None:
    long_ago = utcnow() - timedelta(days=days)
    with store.write() as session:
        session.execute(
            update(InboxMessage)
            .where(col(InboxMessage.id) == inbox_id)
            .values(received_at=long_ago, processed_at=long_ago, **values)
        )


def _attach(store: Store, files: AttachmentFiles, inbox_id: int, *contents: bytes) -> list[str]:
    attachments = [files(data, "foto.jpg", "image/jpeg") for data in contents]
    listed = [{"sha256": a.sha256, "size": a.size, "filename": a.filename} for a in attachments]
    with store.write() as session:
        session.execute(update(Complaint).where(col(Complaint.inbox_id) == inbox_id).values(attachments=listed))
    return [a.sha256 for a in attachments]


def _row(store: Store, inbox_id: int) -> InboxMessage:
    with store.read() as session:
        row = session.get(InboxMessage, inbox_id)
        assert row is not None
        return row


def test_rows_finished_past_retention_lose_raw_and_files_but_keep_provenance_and_complaint(
    config: Config, store: Store, tmp_path: Path
) -> None:
    assert config.retention.raw_days == 365
    gateway = Gateway(config, store)
    old, recent, failed = _entry(store, "lama"), _entry(store, "baru"), _entry(store, "gagal")
    asyncio.run(gateway.worker.run_until_idle())
    files = AttachmentFiles(config.data_dir)
    only_old, shared = _attach(store, files, old, b"foto lama", b"foto yang sama")
    _attach(store, files, recent, b"foto yang sama")
    raw_before = _row(store, old).raw
    _age(store, old, 400, headers={"X-Hub-Signature-256": "sha256=legacy-row", "content-type": "application/json"})
    _age(store, recent, 30)
    _age(store, failed, 400, status="failed")  # in the failed list: kept for its replay

    config_path = write_config(tmp_path, config.database.url, free_port())
    assert config.data_dir == tmp_path / "data"  # the CLI's config names the same data directory
    preview = json.loads(cli(config_path, "purge", "--dry-run"))
    assert (preview["dry_run"], preview["rows"], preview["raw_bytes"]) == (True, 1, len(raw_before))
    assert (preview["attachment_files"], preview["attachment_bytes"]) == (1, len(b"foto lama"))
    assert _row(store, old).raw == raw_before and files.path(only_old).is_file()  # a dry run changes nothing

    # The daily job: a worker's first round purges (and every day after).
    asyncio.run(Gateway(config, store).worker.run_until_idle())

    purged = _row(store, old)
    assert purged.raw == b"" and purged.purged_at is not None
    assert (purged.raw_sha256, purged.raw_size) == (hashlib.sha256(raw_before).hexdigest(), len(raw_before))
    assert purged.headers == {"X-Hub-Signature-256": REDACTED, "content-type": "application/json"}
    assert purged.meta["idempotency_key"] == "lama"
    assert not files.path(only_old).exists()
    assert files.path(shared).is_file()  # still listed by the recent complaint
    assert _row(store, recent).raw != b"" and _row(store, recent).purged_at is None
    assert _row(store, failed).raw != b"" and _row(store, failed).purged_at is None
    with store.read() as session:
        complaint = session.execute(select(Complaint).where(col(Complaint.inbox_id) == old)).scalar_one()
    assert complaint.body.startswith("Saluran air tersumbat")  # the complaint record stays whole

    again = json.loads(cli(config_path, "purge"))
    assert (again["rows"], again["attachment_files"]) == (0, 0)
