"""The gateway's side of the agencies' systems: delivering forwards, disabled sinks, and Open311 updates.

- ``deliver``: the worker hands it an outbox ``forward`` row. A sink that answered 410 Gone is disabled
  (kept in ``channel_state``, shown on the Kanal page) and its rows go to the failed list until
  ``lapor-gateway sinks enable NAME`` and a replay.
- ``poll_open311``: one poller per Open311 sink, held by one gateway instance (the advisory lock the SMPP
  bind and the IMAP poller take), reads the forwarded requests back every ``poll_interval_s`` and turns
  their updates into lifecycle events: ``closed`` -> resolved, new ``status_notes`` -> in_progress. An
  update older than the last one applied never moves the status back; the same update twice is one event.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import select, update
from sqlmodel import col

from gateway import lifecycle
from gateway.config import Config, SinkConfig
from gateway.context import DatabaseState
from normalizer.errors import GatewayError, ProviderRejected, UnknownChannel
from sinks.forwarders import FORWARDERS, open311
from sinks.forwarders.webhook import SinkGone
from sinks.store.db import Store
from sinks.store.models import DONE, Complaint, OutboxMessage, utcnow

log = structlog.get_logger(__name__)

SINK_DISABLED = "sink.disabled"
SINK_ENABLED = "sink.enabled"
OPEN311_POLLED = "open311.polled"
OPEN311_POLL_FAILED = "open311.poll_failed"
_DISABLED_KEY = "sink:{name}:disabled"


class SinkDisabled(ProviderRejected):
    """The sink is disabled (its receiver answered 410 Gone); nothing is sent until it is enabled again."""


def disabled(store: Store, name: str) -> dict[str, Any] | None:
    value = DatabaseState(store).get(_DISABLED_KEY.format(name=name))
    return value if isinstance(value, dict) else None


def disable(store: Store, name: str, why: str) -> None:
    DatabaseState(store).put(_DISABLED_KEY.format(name=name), {"at": utcnow().isoformat(), "why": why})
    log.warning(SINK_DISABLED, sink=name, why=why)


def enable(store: Store, name: str) -> bool:
    """Re-enable a disabled sink; False when it was not disabled."""
    if disabled(store, name) is None:
        return False
    DatabaseState(store).delete(_DISABLED_KEY.format(name=name))
    log.info(SINK_ENABLED, sink=name)
    return True


def sink_states(config: Config, store: Store) -> list[dict[str, Any]]:
    """Each configured sink with where it goes and, when disabled, since when and why."""
    return [
        {"name": s.name, "type": s.type, "target": s.url or s.endpoint, "disabled": disabled(store, s.name)}
        for s in config.sinks
    ]


async def deliver(config: Config, store: Store, row: OutboxMessage, client: httpx.AsyncClient) -> str | None:
    sink = config.sink(row.target)
    if sink is None:
        raise UnknownChannel(f"no sink named {row.target!r} in the configuration")
    gone = await asyncio.to_thread(disabled, store, sink.name)
    if gone is not None:
        raise SinkDisabled(
            f"sink {sink.name} is disabled since {gone['at']} ({gone['why']}) — "
            f"run `lapor-gateway sinks enable {sink.name}`, then replay"
        )
    try:
        sent = await FORWARDERS[sink.type](row.payload, sink, row.idempotency_key, client, row.attempts)
    except SinkGone as exc:
        await asyncio.to_thread(disable, store, sink.name, str(exc))
        raise
    if sink.type == "open311" and sent and not sent.startswith(open311.TOKEN_PREFIX) and row.tracking_id:
        await asyncio.to_thread(_keep_ref, store, None, row.tracking_id, sent)  # the agency's id, on the complaint
    return sent


# ---- Open311 updates -----------------------------------------------------------------------------


def _forwarded_rows(store: Store, sink: SinkConfig) -> list[tuple[int, str, str]]:
    """(outbox id, tracking id, provider id) of this sink's delivered forwards whose complaint is still open."""
    with store.read() as session:
        rows = session.execute(
            select(col(OutboxMessage.id), col(OutboxMessage.tracking_id), col(OutboxMessage.provider_message_id))
            .join(Complaint, col(Complaint.tracking_id) == col(OutboxMessage.tracking_id))
            .where(
                col(OutboxMessage.kind) == "forward",
                col(OutboxMessage.target) == sink.name,
                col(OutboxMessage.status) == DONE,
                col(OutboxMessage.provider_message_id).is_not(None),
                col(Complaint.status).in_([lifecycle.FORWARDED, lifecycle.IN_PROGRESS]),
            )
            .order_by(col(OutboxMessage.id))
        ).all()
    return [(int(i), str(t), str(p)) for i, t, p in rows]


def _keep_ref(store: Store, outbox_id: int | None, tracking_id: str, request_id: str) -> None:
    """The agency's id for the complaint: on the complaint, and on the forward that had only a token."""
    with store.write() as session:
        if outbox_id is not None:
            outbox = update(OutboxMessage).where(col(OutboxMessage.id) == outbox_id)
            session.execute(outbox.values(provider_message_id=request_id))
        session.execute(
            update(Complaint).where(col(Complaint.tracking_id) == tracking_id).values(agency_ref=request_id)
        )


def update_key(sink: str, request: open311.ServiceRequest) -> str:
    """What makes an update itself: its request, its time and what it says."""
    said = hashlib.sha256(f"{request.status}\n{request.status_notes or ''}".encode()).hexdigest()[:16]
    when = request.updated_datetime.isoformat() if request.updated_datetime else "-"
    return f"open311:{sink}:{request.service_request_id}:{when}:{said}"


def apply_update(
    config: Config, store: Store, sink: SinkConfig, tracking_id: str, request: open311.ServiceRequest
) -> lifecycle.Applied | None:
    """One request's state as an event, or None when it tells nothing new (or is older than what we have)."""
    with store.write() as session:
        query = select(Complaint).where(col(Complaint.tracking_id) == tracking_id)
        if store.is_postgres:
            query = query.with_for_update()
        complaint = session.execute(query).scalar_one_or_none()
        if complaint is None or complaint.status not in (lifecycle.FORWARDED, lifecycle.IN_PROGRESS):
            return None
        updated = request.updated_datetime
        last = complaint.agency_updated_at
        if updated is not None and last is not None and updated <= last:
            return None  # older than (or the same as) the update already applied: never moves the status back
        note = request.status_notes
        if request.status == "closed":
            change = lifecycle.Change(to=lifecycle.RESOLVED, public_note=note or "Laporan telah ditindaklanjuti.")
        elif note and note != lifecycle.latest_public_note(session, tracking_id):
            change = lifecycle.Change(to=lifecycle.IN_PROGRESS, public_note=note)
        else:
            return None
        change = lifecycle.Change(
            **{**change.__dict__, "source": "open311", "dedupe_key": update_key(sink.name, request)}
        )
        if updated is not None:
            complaint.agency_updated_at = updated
        complaint.agency_ref = request.service_request_id
        actor = lifecycle.Actor("agency", f"open311:{sink.name}", agency=complaint.agency)
        return lifecycle.apply(session, config, complaint, change, actor)


async def poll_once(config: Config, store: Store, sink: SinkConfig, client: httpx.AsyncClient) -> int:
    """One round: tokens turned into ids, then the open requests read in calls of at most 50 ids."""
    rows = await asyncio.to_thread(_forwarded_rows, store, sink)
    by_request: dict[str, str] = {}
    for outbox_id, tracking_id, ref in rows:
        if ref.startswith(open311.TOKEN_PREFIX):
            found = await open311.resolve_token(sink, ref[len(open311.TOKEN_PREFIX) :], client)
            if found is None:
                continue
            await asyncio.to_thread(_keep_ref, store, outbox_id, tracking_id, found)
            by_request[found] = tracking_id
            continue
        by_request[ref] = tracking_id
    ids = list(by_request)
    applied = 0
    for start in range(0, len(ids), open311.MAX_IDS_PER_CALL):
        chunk = ids[start : start + open311.MAX_IDS_PER_CALL]
        requests = await open311.fetch_requests(sink, chunk, client)
        # Oldest first, so several updates of one request in one answer apply in their order.
        requests.sort(key=lambda r: r.updated_datetime or datetime.min.replace(tzinfo=utcnow().tzinfo))
        for request in requests:
            known = by_request.get(request.service_request_id)
            if known is None:
                continue
            try:
                result = await asyncio.to_thread(apply_update, config, store, sink, known, request)
            except lifecycle.LifecycleError as exc:
                log.warning(OPEN311_POLL_FAILED, sink=sink.name, tracking_id=known, error=str(exc))
                continue
            if result is not None and result.created:
                applied += 1
    log.info(OPEN311_POLLED, sink=sink.name, requests=len(ids), applied=applied)
    return applied


async def poll_open311(config: Config, store: Store, sink: SinkConfig, context: Any) -> None:
    """Run the poller for one sink forever, in the one gateway instance that holds its lock."""
    async with context.exclusive(f"open311-poll:{sink.name}"):
        while True:
            try:
                await poll_once(config, store, sink, context.http)
            except GatewayError as exc:
                log.warning(OPEN311_POLL_FAILED, sink=sink.name, error=str(exc))
            except Exception:
                # The poller must outlive a surprise (a bad answer, a lost connection): log it, try next round.
                log.exception(OPEN311_POLL_FAILED, sink=sink.name)
            await asyncio.sleep(sink.poll_interval_s)
