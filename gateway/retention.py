"""Retention: raw payloads and attachment bytes of inbox rows finished ``retention.raw_days`` ago are purged.

What stays is the complaint record itself and the provenance of what was
purged: the payload's sha256 and size, the row's headers and meta (without
secrets, see ``gateway/redact.py``), and when it was purged. Only finished rows
(``done``, ``ignored``) go; a row in the failed list keeps its payload until it
is replayed or dropped. An attachment file goes only when no complaint that
keeps its payload still lists the same bytes.

Run daily by every worker (``Worker.run_once``) and by ``lapor-gateway purge [--dry-run]``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlmodel import col

from gateway.context import AttachmentFiles
from gateway.redact import without_secrets
from sinks.store.db import Store
from sinks.store.models import DONE, IGNORED, Complaint, InboxMessage

log = structlog.get_logger(__name__)

RETENTION_PURGED = "retention.purged"
PURGE_EVERY_S = 24 * 3600.0
_PAGE = 500


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    dry_run: bool
    rows: int
    raw_bytes: int
    attachment_files: int
    attachment_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cutoff": self.cutoff.isoformat()}


def _due(cutoff: datetime) -> Any:
    finished_at = func.coalesce(col(InboxMessage.processed_at), col(InboxMessage.received_at))
    return (
        col(InboxMessage.status).in_([DONE, IGNORED]),
        col(InboxMessage.purged_at).is_(None),
        finished_at < cutoff,
    )


def purge(store: Store, data_dir: Path, raw_days: int, now: datetime, dry_run: bool = False) -> PurgeReport:
    """Purge (or, with ``dry_run``, count) what is past retention; safe to run again and from several processes."""
    cutoff = now - timedelta(days=raw_days)
    with store.read() as session:
        due_ids = list(session.execute(select(col(InboxMessage.id)).where(*_due(cutoff))).scalars())
    due = set(due_ids)
    rows = raw_bytes = 0
    for start in range(0, len(due_ids), _PAGE):
        page = due_ids[start : start + _PAGE]
        with store.write() as session:
            found = session.execute(select(InboxMessage).where(col(InboxMessage.id).in_(page), *_due(cutoff)))
            for row in found.scalars():
                rows += 1
                raw_bytes += len(row.raw)
                if dry_run:
                    continue
                session.execute(
                    update(InboxMessage)
                    .where(col(InboxMessage.id) == row.id)
                    .values(
                        raw=b"",
                        raw_sha256=hashlib.sha256(row.raw).hexdigest(),
                        raw_size=len(row.raw),
                        purged_at=now,
                        headers=without_secrets(row.headers),
                        meta=without_secrets(row.meta),
                    )
                )
    files, file_bytes = _purge_attachments(store, AttachmentFiles(data_dir), due, dry_run)
    report = PurgeReport(cutoff, dry_run, rows, raw_bytes, files, file_bytes)
    if rows or files:
        log.info(RETENTION_PURGED, **report.as_dict())
    return report


def _purge_attachments(store: Store, files: AttachmentFiles, purged: set[int], dry_run: bool) -> tuple[int, int]:
    """Delete the files only complaints of purged rows list (the same bytes are one file for every complaint)."""
    candidates: set[str] = set()
    kept: set[str] = set()
    with store.read() as session:
        listed = session.execute(
            select(col(Complaint.inbox_id), col(Complaint.attachments), col(InboxMessage.purged_at)).join(
                InboxMessage, col(InboxMessage.id) == col(Complaint.inbox_id)
            )
        )
        for inbox_id, attachments, purged_at in listed:
            digests = {str(each["sha256"]) for each in attachments or [] if each.get("sha256")}
            if inbox_id in purged or purged_at is not None:
                candidates |= digests
            else:
                kept |= digests
    count = size = 0
    for digest in sorted(candidates - kept):
        path = files.path(digest)
        if not path.is_file():
            continue
        count += 1
        size += path.stat().st_size
        if not dry_run:
            path.unlink(missing_ok=True)
    return count, size
