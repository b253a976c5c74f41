"""The replay audit log: every replay and dry run of a failed message, with who, when, what and result.

``audited_preview`` and ``audited_replay`` wrap ``gateway.replay`` so that any
front end (web pages now; the API and CLI can call the same) leaves the same trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlmodel import col

from gateway import replay
from gateway.config import Config
from sinks.store.db import Store
from sinks.store.models import AuditEntry, utcnow

log = structlog.get_logger(__name__)

AUDIT_RECORDED = "audit.recorded"

REPLAY = "replay"
DRY_RUN = "replay_dry_run"

# Results: the row went back to the queue, was not in the failed list any more, or was only previewed.
PENDING = "pending"
NOT_FAILED = "not_failed"
PREVIEWED = "previewed"
MISSING = "missing"


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    result: str
    detail: dict[str, Any]


def record(store: Store, actor: str, action: str, target: str, result: str, detail: dict[str, Any]) -> None:
    with store.write() as session:
        session.add(AuditEntry(at=utcnow(), actor=actor, action=action, target=target, result=result, detail=detail))
    log.info(AUDIT_RECORDED, actor=actor, action=action, target=target, result=result)


def audited_preview(store: Store, config: Config, ref: replay.FailedRef, actor: str) -> dict[str, Any]:
    """The dry run of ``replay.preview``, logged; a vanished row is a result, not an exception."""
    try:
        view = replay.preview(store, config, ref)
    except LookupError as exc:
        record(store, actor, DRY_RUN, str(ref), MISSING, {"error": str(exc)})
        return {"id": str(ref), "error": str(exc)}
    summary = {"error": view["error"]} if "error" in view else {"parts": len(view.get("results", []))}
    record(store, actor, DRY_RUN, str(ref), PREVIEWED, summary)
    return view


def audited_replay(store: Store, ref: replay.FailedRef, actor: str) -> bool:
    """``replay.replay`` with its audit entry; True when the row is pending again."""
    queued = replay.replay(store, ref)
    record(store, actor, REPLAY, str(ref), PENDING if queued else NOT_FAILED, {})
    return queued


def recent(store: Store, limit: int = 100, before_id: int | None = None) -> list[AuditView]:
    """Newest first; ``before_id`` pages back through older entries."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    with store.read() as session:
        return [
            AuditView(
                id=entry.id or 0,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                target=entry.target,
                result=entry.result,
                detail=dict(entry.detail),
            )
            for entry in session.execute(query).scalars()
        ]
