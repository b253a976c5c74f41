"""The worker: inbox rows become complaints and replies; outbox rows get delivered.

A batch goes through three steps:

1. *claim* (one short transaction): due rows are leased to this worker
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer at a
   time, so its ``BEGIN IMMEDIATE`` transaction is the lock);
2. *parse* (no transaction): the channel's ``parse`` and ``enrich`` (local
   I/O only) and the normalizer;
3. *store* (one transaction for the whole batch, a savepoint per row): the
   complaint, its outbox rows, a media job per attachment still to download
   and the inbox row's ``done`` are written together, or none of them is.

Media never holds a complaint back: the acknowledgement is queued with the
complaint, and each media job (``media_fetch``, claimed like the outbox)
downloads one attachment through the channel's ``fetch_media`` and adds it
to the complaint when it arrives, with the same attempts, backoff, failed
list and replay as the outbox.

A worker that dies mid-batch loses nothing: its lease runs out and another
worker takes the rows again. The unique key on (inbox_id, part) means a row
processed twice still makes one complaint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import structlog
import tenacity
import uvloop
from sqlalchemy import Select, Update, bindparam, func, or_, select, update
from sqlmodel import Session, col

from channels.base import ChannelAdapter, ChannelContext, Reply
from gateway import agency_sync, lifecycle, logs, retention
from gateway.config import Config
from gateway.metrics import Metrics
from gateway.notify import DONE_CHANNEL, INBOX_CHANNEL, Listening, notifier_for
from gateway.registry import CHANNELS, by_provider
from normalizer import NeedsHelp, Outcome, StatusQuery, normalize
from normalizer.errors import GatewayError, IgnoredMessage, ProviderError, StoreUnavailable, UnknownChannel
from normalizer.related import likely_duplicates
from normalizer.tracking import new_tracking_id
from normalizer.types import Attachment, ChannelMessage, ComplaintRecord
from normalizer.understand import Understanding
from sinks.store import queries
from sinks.store.batch import BatchWrites, FinishedRow, LeaseLost, finish, finish_many
from sinks.store.db import Store
from sinks.store.models import (
    DONE,
    FAILED,
    IGNORED,
    PENDING,
    PROCESSING,
    InboxMessage,
    MediaFetch,
    OutboxMessage,
    UTCDateTime,
    utcnow,
)

log = structlog.get_logger(__name__)

Row = TypeVar("Row", InboxMessage, OutboxMessage, MediaFetch)
# A batch's sends share a few kept-alive connections: httpcore looks at every pooled connection for each
# request, so 50 connections cost more than they bring (py-spy: a sixth of the worker's time).
SEND_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)
REPLY_FIELDS = fields(Reply)
# How long an outbox batch waits for its sends before it records those done and leaves the rest running.
OUTBOX_BATCH_WAIT_S = 2.0
# Sends in flight to one target: a target that hangs holds at most this many of SEND_LIMITS' connections.
PER_TARGET_SENDS = 4


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait before the next try, by tenacity's exponential-with-jitter policy."""
    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return float(tenacity.wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)(state))


def describe_error(exc: BaseException) -> tuple[str, str, bool]:
    """(type, one-line message, retryable) — retryable comes from the error tree alone."""
    retryable = exc.retryable if isinstance(exc, GatewayError) else False
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return type(exc).__name__, message[:2000], retryable


@functools.cache
def _claim_statements(model: type[Row], is_postgres: bool) -> tuple[Select[Any], Update]:
    """A queue table's "anything due?" probe and its claim, built once per process (their values are bound).

    Built per call they cost more than the claim itself: constructing the expressions and their cache keys.
    """
    table: Any = model
    now = bindparam("b_now", type_=UTCDateTime())
    is_due = or_(
        (table.status == PENDING) & (table.next_attempt_at <= now),
        (table.status == PROCESSING) & (table.lease_until < now),
    )
    probe = select(table.id).where(is_due).limit(1)
    due = select(table.id).where(is_due).order_by(table.next_attempt_at, table.id).limit(bindparam("b_limit"))
    if is_postgres:
        due = due.with_for_update(skip_locked=True)
    claimed = (
        update(table)
        .where(table.id.in_(due.scalar_subquery()))
        .values(
            status=PROCESSING,
            claim_token=bindparam("b_token"),
            lease_until=bindparam("b_lease_until", type_=UTCDateTime()),
        )
        .returning(table)
        # A fresh session holds no rows to keep in step: the leased ones come back through RETURNING.
        .execution_options(synchronize_session=False)
    )
    return probe, claimed


def claim(store: Store, model: type[Row], limit: int, lease_s: float, probe: bool = True) -> list[Row]:
    """Lease due rows: pending ones whose time has come, and processing ones whose lease ran out.

    ``probe=False`` skips the read that first asks whether anything is due (a worker whose last claim
    came back full expects more).
    """
    now = utcnow()
    first, claimed = _claim_statements(model, store.is_postgres)
    # Most rounds find nothing in one of the two tables: a read says so without taking the write lock
    # (on SQLite an empty claim still queued behind the inbox writer; it was half the worker's time).
    if probe:
        with store.read() as session:
            if session.execute(first, {"b_now": now}).first() is None:
                return []
    values = {
        "b_now": now,
        "b_limit": limit,
        "b_token": uuid.uuid4().hex,
        "b_lease_until": now + timedelta(seconds=lease_s),
    }
    # A claim lost in a power cut costs nothing (the rows are due again), so it does not wait for the disk.
    with store.write(durable=False) as session:
        rows: list[Row] = sorted(session.execute(claimed, values).scalars(), key=lambda row: row.id or 0)
    return rows


def _failure_values(
    row: InboxMessage | OutboxMessage | MediaFetch, exc: BaseException, config: Config
) -> tuple[dict[str, Any], str, bool]:
    """The columns a failed try writes (retry later, or give up), its one-line message, and whether it gave up."""
    error_type, message, retryable = describe_error(exc)
    attempts = row.attempts + 1
    give_up = not retryable or attempts >= config.worker.max_attempts
    delay = backoff_delay(attempts, config.worker.backoff_initial_s, config.worker.backoff_max_s)
    # A receiver that said when to come back (Retry-After) is not asked sooner.
    delay = max(delay, float(getattr(exc, "retry_after", None) or 0.0))
    values = {
        "status": FAILED if give_up else PENDING,
        "attempts": attempts,
        "last_error": message,
        "error_type": error_type,
        "next_attempt_at": utcnow() + timedelta(seconds=delay),
    }
    return values, message, give_up


def _record_failure(
    session: Session, row: InboxMessage | OutboxMessage | MediaFetch, exc: BaseException, config: Config
) -> tuple[str, bool]:
    values, message, give_up = _failure_values(row, exc, config)
    finish(session, row, **values)
    return message, give_up


@dataclass
class Parsed:
    """An inbox row after step 2: what to store, or why it failed."""

    row: InboxMessage
    adapter: ChannelAdapter | None = None
    outcomes: list[tuple[ChannelMessage, Outcome]] = field(default_factory=list)
    receipts: list[Any] = field(default_factory=list)
    ignored: str | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Completion:
    """What processing an inbox row produced (for waiters such as the manual-entry API)."""

    inbox_id: int
    key: tuple[str, str, str]  # (channel, provider, external_id): known to an edge before its row exists
    status: str
    tracking_ids: tuple[str, ...] = ()
    error: str | None = None
    # The schema-v1 records the row produced, so a waiting request needs no second read.
    records: tuple[dict[str, Any], ...] = ()


class Worker:
    def __init__(
        self,
        config: Config,
        store: Store,
        metrics: Metrics,
        make_context: Callable[[httpx.AsyncClient], ChannelContext],
        on_complete: Callable[[list[Completion]], None] = lambda _: None,
        understanding: Understanding | None = None,
        tracking_ids: queries.DrawId = new_tracking_id,
    ) -> None:
        self.config = config
        self.understanding = understanding
        self._tracking_ids = tracking_ids
        self.store = store
        self.metrics = metrics
        self._make_context = make_context
        self._on_complete = on_complete
        self._http: httpx.AsyncClient | None = None
        self._adapters = by_provider()
        self.wake = threading.Event()
        # Outbox sends that outlived their batch's wait, recorded each on its own when they end.
        self._stragglers: set[asyncio.Future[None]] = set()
        self._next_purge = 0.0  # monotonic time of the next retention purge: the first run_once does one
        self._target_turns: dict[str, asyncio.Semaphore] = {}
        self._inbox_was_full = False  # the last inbox claim came back with a whole batch

    # ---- inbox -------------------------------------------------------------------------------

    async def process_inbox_batch(self) -> int:
        size = self.config.worker.batch_size
        # A full batch means more are likely waiting: the next claim goes straight to the write.
        rows = claim(self.store, InboxMessage, size, self.config.worker.lease_s, probe=not self._inbox_was_full)
        self._inbox_was_full = len(rows) == size
        if not rows:
            return 0
        parsed = [await self._parse(row) for row in rows]
        completions = self._store_batch(parsed)
        self._on_complete(completions)
        return len(rows)

    async def _parse(self, row: InboxMessage) -> Parsed:
        result = Parsed(row=row)
        try:
            adapter = self._adapters.get(row.provider)
            if adapter is None:
                raise UnknownChannel(f"no channel handles provider {row.provider!r}")
            result.adapter = adapter
            meta = {**row.meta, "external_id": row.external_id, "inbox_id": row.id}
            if adapter.receipts is not None:
                result.receipts = adapter.receipts(row.raw, meta)
            try:
                messages = adapter.parse(row.raw, meta)
            except IgnoredMessage as exc:
                result.ignored = str(exc) or "ignored"
                return result
            settings = self.config.channel(adapter.name)
            for message in messages:
                enriched = message
                if adapter.enrich is not None:
                    enriched = await adapter.enrich(message, settings, self._make_context(self._client()))
                result.outcomes.append(
                    (enriched, normalize(enriched, row.received_at, self.config.keywords, self.understanding))
                )
        except Exception as exc:
            result.error = exc
        return result

    def _store_batch(self, batch: Sequence[Parsed]) -> list[Completion]:
        stored_at = utcnow()
        try:
            # Fast path: the batch in one transaction, no savepoints, no look-before-insert.
            with self.store.write() as session:
                completions, failures = self._write_batch(session, batch, stored_at, careful=False)
        except StoreUnavailable:
            raise  # no row's fault: the leases run out and the rows are taken again once the store is back
        except Exception:
            # A surprise (a tracking-id collision, a replayed row, a lost lease, a row that will not
            # store): do it again with a savepoint per row, so one row's trouble stays its own.
            with self.store.write() as session:
                completions, failures = self._write_batch(session, batch, stored_at, careful=True)
        # Logged and counted only now, after the pass that committed: a retried pass must not count twice.
        for row, error, message, gave_up in failures:
            _, _, retryable = describe_error(error)
            self.metrics.failed.labels(row.channel, row.provider, str(retryable).lower()).inc()
            event = logs.WORKER_FAILED if gave_up else logs.WORKER_RETRY
            log.warning(event, inbox_id=row.id, channel=row.channel, error=message, attempts=row.attempts + 1)
        for completion in completions:
            for record in completion.records:
                if record.get("priority") == "urgent":
                    self.metrics.urgent.labels(record["channel"]).inc()
            if completion.status == IGNORED:
                log.info(logs.WORKER_IGNORED, inbox_id=completion.inbox_id, channel=completion.key[0])
            elif completion.status == DONE:
                log.info(
                    logs.WORKER_PROCESSED,
                    inbox_id=completion.inbox_id,
                    channel=completion.key[0],
                    tracking_ids=list(completion.tracking_ids),
                )
        for parsed in batch:
            if parsed.error is None and parsed.ignored is None:
                latency = (stored_at - parsed.row.received_at).total_seconds()
                self.metrics.latency.labels(parsed.row.channel).observe(max(latency, 0.0))
                self.metrics.processed.labels(parsed.row.channel, parsed.row.provider).inc()
        return completions

    def _write_batch(
        self, session: Session, batch: Sequence[Parsed], stored_at: datetime, careful: bool
    ) -> tuple[list[Completion], list[tuple[InboxMessage, BaseException, str, bool]]]:
        """Write one pass over the batch; returns the completions and the failures it recorded."""
        completions: list[Completion] = []
        failures: list[tuple[InboxMessage, BaseException, str, bool]] = []
        writes = BatchWrites(session, careful, self._tracking_ids)
        for parsed in batch:
            row = parsed.row
            if parsed.error is None:
                try:
                    if careful:
                        with session.begin_nested():
                            completions.append(self._store_row(writes, parsed, stored_at))
                    else:
                        completions.append(self._store_row(writes, parsed, stored_at))
                    continue
                except LeaseLost:
                    if not careful:
                        raise
                    continue
                except Exception as exc:
                    if not careful:
                        raise
                    parsed.error = exc
            try:
                message, gave_up = _record_failure(session, row, parsed.error, self.config)
            except LeaseLost:
                continue
            failures.append((row, parsed.error, message, gave_up))
            if gave_up:
                completions.append(Completion(row.id or 0, _key(row), FAILED, error=message))
        writes.flush()
        if completions:
            # Heard at commit: a request waiting for one of these rows in another process looks now.
            notifier_for(self.store).announce_in(session, DONE_CHANNEL)
        return completions, failures

    def _store_row(self, writes: BatchWrites, parsed: Parsed, stored_at: datetime) -> Completion:
        row = parsed.row
        assert row.id is not None and parsed.adapter is not None
        for receipt in parsed.receipts:
            writes.flush()  # the reply it reports on may have been queued in this very batch
            writes.session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.provider_message_id) == receipt.provider_message_id)
                .values(delivery_status=receipt.status)
            )
        records: list[dict[str, Any]] = []
        if parsed.ignored is None:
            for message, outcome in parsed.outcomes:
                record = self._store_outcome(writes, row, parsed.adapter, message, outcome, stored_at)
                if record is not None:
                    records.append(record)
        tracking_ids = [record["tracking_id"] for record in records]
        status = IGNORED if parsed.ignored is not None else DONE
        writes.finish_inbox(
            row,
            status=status,
            processed_at=stored_at,
            last_error=parsed.ignored if parsed.ignored is not None else row.last_error,
        )
        return Completion(row.id, _key(row), status, tuple(tracking_ids), records=tuple(records))

    def _store_outcome(
        self,
        writes: BatchWrites,
        row: InboxMessage,
        adapter: ChannelAdapter,
        message: ChannelMessage,
        outcome: Outcome,
        stored_at: datetime,
    ) -> dict[str, Any] | None:
        """Store what one message asks for; the schema-v1 record of the complaint it made (or had made before)."""
        assert row.id is not None
        replies = self.config.replies
        session = writes.session
        if isinstance(outcome, StatusQuery):
            if outcome.tracking_id is None:
                text = replies.status_usage
            else:
                writes.flush()
                found = queries.complaint_by_tracking_id(session, outcome.tracking_id)
                if found is None:
                    text = replies.not_found.format(tracking_id=outcome.tracking_id)
                else:
                    text = lifecycle.status_reply(session, self.config, found)
            self._queue_reply(writes, adapter, message, row.id, text, tracking_id=None)
            return None
        if isinstance(outcome, NeedsHelp):
            # A chat that was just opened (LINE's follow event) is greeted rather than corrected.
            text = replies.greeting if message.extra.get("greeting") else replies.help
            self._queue_reply(writes, adapter, message, row.id, text, tracking_id=None)
            return None

        # Only the careful pass looks first; on the fast path the unique key on (inbox_id, part) objects.
        existing = queries.complaint_for_part(session, row.id, message.part) if writes.careful else None
        if existing is not None:  # a replay of a row that already made its complaint
            return queries.complaint_record(existing)
        record = outcome.record
        parent = self._parent(writes, adapter, message, record.parent_tracking_id, row.received_at)
        if parent != record.parent_tracking_id:
            record = replace(record, parent_tracking_id=parent)
        if not parent:
            record = self._related(writes, record)
        fields = queries.complaint_fields(record, row.id, message.part, message.reply_to, stored_at)
        fields["due_at"] = lifecycle.verify_due(self.config, record.received_at)
        writes.complaint(fields)
        complaint = SimpleNamespace(**fields)
        if parent:
            writes.flush()  # the follow-up is written before the parent's reopen event names it
            lifecycle.reopen_on_follow_up(session, self.config, parent, complaint.tracking_id, record.received_at)
        if parent:
            text = replies.followup_ack.format(tracking_id=complaint.tracking_id, parent_tracking_id=parent)
        else:
            text = replies.ack.format(tracking_id=complaint.tracking_id)
        # The later photos of a chat album join the first one's complaint without a reply each.
        if not (parent and message.extra.get("silent_followup")):
            self._queue_reply(writes, adapter, message, row.id, text, tracking_id=complaint.tracking_id)
        if adapter.fetch_media is not None:
            for position, descriptor in enumerate(message.pending_media):
                key = f"media:{row.id}:{message.part}:{position}"
                writes.media(
                    queries.media_values(key, complaint.tracking_id, row.id, adapter.name, position, descriptor)
                )
        body = queries.complaint_record(complaint)  # read-only from here: the forwards and the waiting request share it
        for sink_name, key, payload in lifecycle.created_payloads(self.config, body, stored_at):
            writes.outbox(queries.outbox_values("forward", sink_name, key, payload, complaint.tracking_id))
        return body

    def _related(self, writes: BatchWrites, record: ComplaintRecord) -> ComplaintRecord:
        """The record with the open complaints it likely duplicates (same category and region, recent)."""
        region = record.location.region_code if record.location else None
        if self.understanding is None or not record.category or not region:
            return record
        since = record.received_at - timedelta(days=self.config.normalizer.related_days)
        candidates = queries.related_candidates(writes.session, record.category, region, since)
        # A duplicate may sit in this very batch, not yet sent: looked at here rather than flushing the batch.
        candidates += [
            (fields["tracking_id"], fields["subject"], fields["body"])
            for fields in writes.pending_complaints()
            if fields["category"] == record.category
            and fields["region_code"] == region
            and not fields["parent_tracking_id"]
            and fields["received_at"] >= since
        ]
        texts = [(tracking_id, f"{subject or ''} {body}") for tracking_id, subject, body in candidates]
        related = likely_duplicates(f"{record.subject or ''} {record.body}", texts)
        return replace(record, related=tuple(related)) if related else record

    def _parent(
        self,
        writes: BatchWrites,
        adapter: ChannelAdapter,
        message: ChannelMessage,
        quoted: str | None,
        received_at: datetime,
    ) -> str | None:
        """Which complaint a message continues: a quoted id, a reply to our ack, or the chat's open one."""
        references = message.extra.get("reply_references") or []
        window = getattr(self.config.channel(adapter.name), "followup_window_minutes", 0) or 0
        if message.channel == "sms":
            window = 0  # an SMS number is no chat: Twilio's window is for its WhatsApp messages
        not_done = bool(message.reply_to) and lifecycle.says_not_done(message.text or "")
        if not (quoted or references or not_done or (window > 0 and message.reply_to)):
            return None
        writes.flush()  # the complaint continued may be earlier in this batch
        session = writes.session
        if quoted and queries.complaint_by_tracking_id(session, quoted) is not None:
            return quoted
        by_reference = queries.tracking_id_of_reply(session, [str(each) for each in references])
        if by_reference:
            return by_reference
        if window > 0 and message.reply_to:
            since = received_at - timedelta(minutes=window)
            open_complaint = queries.recent_complaint_from(
                session, message.channel, message.provider, message.reply_to, since
            )
            if open_complaint is not None:
                return open_complaint.tracking_id
        if message.reply_to and lifecycle.says_not_done(message.text or ""):
            # "belum selesai" days after the answer: it is about the complaint we just resolved for them.
            return lifecycle.recently_resolved_from(
                session, self.config, message.channel, message.provider, message.reply_to, received_at
            )
        return None

    def _queue_reply(
        self,
        writes: BatchWrites,
        adapter: ChannelAdapter,
        message: ChannelMessage,
        inbox_id: int,
        text: str,
        tracking_id: str | None,
    ) -> None:
        if adapter.send is None or not message.reply_to:
            return
        reply = Reply(
            channel=message.channel,
            provider=message.provider,
            to=message.reply_to,
            text=text,
            idempotency_key=f"reply:{inbox_id}:{message.part}",
            tracking_id=tracking_id,
            in_reply_to=message.external_id,
            extra=message.extra,
        )
        writes.outbox(queries.outbox_values("reply", adapter.name, reply.idempotency_key, _reply_payload(reply)))

    # ---- outbox ------------------------------------------------------------------------------

    async def _run_claimed(self, model: type[Row], work: Callable[[Row], Awaitable[Any]]) -> list[tuple[Row, Any]]:
        """Lease due rows of a queue table and run ``work`` on each concurrently: (row, result or error), in order."""
        rows = claim(self.store, model, self.config.worker.batch_size, self.config.worker.lease_s)
        results = await asyncio.gather(*(work(row) for row in rows), return_exceptions=True)
        return list(zip(rows, results, strict=True))

    async def process_outbox_batch(self) -> int:
        """Deliver a batch; what answers within ``OUTBOX_BATCH_WAIT_S`` is recorded together, the rest later.

        A target that hangs therefore holds up neither the other targets nor the inbox: its sends go on in
        the background (each bounded by ``worker.send_timeout_s``) and are recorded as they end. The sends in
        flight never exceed ``worker.batch_size``, and one target never has more than ``PER_TARGET_SENDS``
        of the client's connections, so a hung target cannot starve the others of connections.
        """
        room = self.config.worker.batch_size - len(self._stragglers)
        if room <= 0:
            return 0
        rows = claim(self.store, OutboxMessage, room, self.config.worker.lease_s)
        if not rows:
            return 0
        sends = {asyncio.ensure_future(self._deliver_bounded(row)): row for row in rows}
        done, pending = await asyncio.wait(sends, timeout=OUTBOX_BATCH_WAIT_S)
        for task in pending:
            straggler = asyncio.ensure_future(self._record_when_done(task, sends[task]))
            self._stragglers.add(straggler)
            straggler.add_done_callback(self._stragglers.discard)
        self._record_deliveries(sorted(((sends[task], _outcome(task)) for task in done), key=lambda d: d[0].id or 0))
        return len(rows)

    async def _record_when_done(self, send: asyncio.Future[str | None], row: OutboxMessage) -> None:
        try:
            await asyncio.wait([send])
        except asyncio.CancelledError:
            send.cancel()  # shutting down: the row stays leased and is taken again when the lease ends
            raise
        # Store down: the lease runs out and the row is sent again once it is back (said once by the store).
        with contextlib.suppress(StoreUnavailable):
            self._record_deliveries([(row, _outcome(send))])

    async def _deliver_bounded(self, row: OutboxMessage) -> str | None:
        """One delivery with a deadline for the whole exchange: a peer that accepts and never answers (or
        trickles a byte at a time, which per-read timeouts never catch) costs at most ``send_timeout_s``,
        waiting for the target's turn included (a row that never got one is retried, never sent twice)."""
        limit = self.config.worker.send_timeout_s
        turn = self._target_turns.setdefault(row.target, asyncio.Semaphore(PER_TARGET_SENDS))
        try:
            async with asyncio.timeout(limit), turn:
                return await self._deliver(row)
        except TimeoutError:
            raise ProviderError(f"{row.kind} to {row.target}: no answer within {limit:g} s") from None

    async def drain_outbox(self) -> None:
        """Wait for the sends still in flight (tests and one-shot runs)."""
        while self._stragglers:
            await asyncio.wait(set(self._stragglers))

    def _record_deliveries(self, ran: Sequence[tuple[OutboxMessage, str | BaseException | None]]) -> None:
        if not ran:
            return
        sent_at = utcnow()
        finished: list[FinishedRow] = []
        failures: dict[int, tuple[BaseException, str, bool]] = {}
        for row, result in ran:
            if isinstance(result, BaseException):
                values, message, gave_up = _failure_values(row, result, self.config)
                failures[row.id or 0] = (result, message, gave_up)
            else:
                values = {
                    "status": DONE,
                    "sent_at": sent_at,
                    "provider_message_id": result,
                    "attempts": row.attempts + 1,
                }
            finished.append(FinishedRow(row, values))
        # One statement per kind of outcome, not one per row.
        with self.store.write() as session:
            lost = finish_many(session, OutboxMessage, finished)
        for row, _ in ran:
            if row.id in lost:
                continue  # another worker has the row now; what it does counts
            if row.id in failures:
                error, message, gave_up = failures[row.id]
                _, _, retryable = describe_error(error)
                self.metrics.outbox_failed.labels(row.kind, row.target, str(retryable).lower()).inc()
                event = logs.OUTBOX_FAILED if gave_up else logs.OUTBOX_RETRY
                log.warning(event, outbox_id=row.id, target=row.target, error=message, attempts=row.attempts + 1)
            else:
                self.metrics.outbox_sent.labels(row.kind, row.target).inc()
                log.info(logs.OUTBOX_SENT, outbox_id=row.id, kind=row.kind, target=row.target)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("the worker's HTTP client is opened by run() or run_until_idle()")
        return self._http

    async def _deliver(self, row: OutboxMessage) -> str | None:
        if row.kind == "reply":
            adapter = CHANNELS.get(row.target)
            if adapter is None or adapter.send is None:
                raise UnknownChannel(f"no channel {row.target!r} that can send replies")
            reply = Reply(**row.payload)
            sent = await adapter.send(reply, self.config.channel(row.target), self._client())
            return sent.provider_message_id
        return await agency_sync.deliver(self.config, self.store, row, self._client())

    # ---- media -------------------------------------------------------------------------------

    async def process_media_batch(self) -> int:
        """Fetch due attachments (concurrently) and attach each to its complaint as it arrives."""
        ran = await self._run_claimed(MediaFetch, self._fetch)
        if not ran:
            return 0
        with self.store.write() as session:
            for row, result in ran:
                try:
                    with session.begin_nested():  # one job's trouble (a lost lease) stays its own
                        if isinstance(result, BaseException):
                            message, gave_up = _record_failure(session, row, result, self.config)
                        else:
                            fields = queries.attachment_fields(result)
                            queries.attach(session, row.tracking_id, fields, self.store.is_postgres)
                            finish(
                                session, row, status=DONE, attempts=row.attempts + 1, fetched_at=utcnow(),
                                sha256=result.sha256, last_error=None, error_type=None,
                            )  # fmt: skip
                except LeaseLost:
                    continue
                if isinstance(result, BaseException):
                    event = logs.MEDIA_FAILED if gave_up else logs.MEDIA_RETRY
                    log.warning(event, media_id=row.id, tracking_id=row.tracking_id, error=message)
                else:
                    log.info(logs.MEDIA_ATTACHED, media_id=row.id, tracking_id=row.tracking_id, size=result.size)
        return len(ran)

    async def _fetch(self, row: MediaFetch) -> Attachment:
        adapter = CHANNELS.get(row.channel)
        if adapter is None or adapter.fetch_media is None:
            raise UnknownChannel(f"no channel {row.channel!r} that can fetch media")
        context = self._make_context(self._client())
        return await adapter.fetch_media(row.descriptor, self.config.channel(row.channel), context)

    # ---- loop --------------------------------------------------------------------------------

    async def run_once(self) -> int:
        await self._purge_if_due()
        return await self.process_inbox_batch() + await self.process_outbox_batch() + await self.process_media_batch()

    async def _purge_if_due(self) -> None:
        """Retention's daily purge (gateway/retention.py), in whichever worker gets there: it is idempotent."""
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + retention.PURGE_EVERY_S
        try:
            await asyncio.to_thread(
                retention.purge, self.store, self.config.data_dir, self.config.retention.raw_days, utcnow()
            )
        except StoreUnavailable:
            self._next_purge = time.monotonic() + 60.0  # try again soon; the outage is logged by the store
        except Exception:
            log.exception(logs.RETENTION_FAILED)  # once a day at most; the worker goes on

    async def run_until_idle(self, max_rounds: int = 100) -> None:
        """Process until nothing is due (tests and one-shot runs)."""
        self._target_turns = {}  # semaphores belong to one event loop, and each run may have its own
        async with httpx.AsyncClient(timeout=30) as self._http:
            for _ in range(max_rounds):
                if await self.run_once() == 0:
                    if not self._stragglers:
                        return
                    await self.drain_outbox()
        self._http = None

    async def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; between batches sleep until woken or the poll interval passes."""
        # Woken by the inbox writers' announcements (PostgreSQL's NOTIFY, SQLite's doorbell), so a worker in
        # another process does not wait out its poll.
        notifier = notifier_for(self.store)
        listening = Listening(
            notifier, INBOX_CHANNEL, self.wake.set, self.config.worker.poll_interval_s, "worker-listen"
        )
        self._target_turns = {}
        async with httpx.AsyncClient(timeout=30, limits=SEND_LIMITS) as self._http:
            try:
                await self._loop(stop)
            finally:
                listening.close()
                # Sends still hanging at shutdown stay leased; another worker takes them when the lease ends.
                for straggler in list(self._stragglers):
                    straggler.cancel()
                await asyncio.gather(*self._stragglers, return_exceptions=True)
        self._http = None

    async def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once()
            except StoreUnavailable:
                # Said once by the store's health (and again when it is back), not a traceback per poll.
                done = 0
                await asyncio.sleep(self.config.worker.poll_interval_s)
            except Exception:
                log.exception(logs.WORKER_CRASHED)
                done = 0
                await asyncio.sleep(self.config.worker.poll_interval_s)
            if done == 0:
                await asyncio.to_thread(self.wake.wait, self.config.worker.poll_interval_s)
                self.wake.clear()


def _outcome(send: asyncio.Future[str | None]) -> str | BaseException | None:
    """A finished send's provider message id, or the error it ended with (a cancelled send counts as one)."""
    if send.cancelled():
        return ProviderError("the send was cancelled")
    return send.exception() or send.result()


def _key(row: InboxMessage) -> tuple[str, str, str]:
    return (row.channel, row.provider, row.external_id)


def _reply_payload(reply: Reply) -> dict[str, Any]:
    # The fields as they are, not asdict's deep copy: the payload is only ever written out as JSON.
    payload = {each.name: getattr(reply, each.name) for each in REPLY_FIELDS}
    payload["extra"] = dict(reply.extra)
    return payload


def queue_depths(store: Store) -> dict[tuple[str, str], int]:
    depths: dict[tuple[str, str], int] = {}
    with store.read() as session:
        for table, model in (("inbox", InboxMessage), ("outbox", OutboxMessage)):
            counted: Any = model
            rows = session.execute(
                select(counted.status, func.count())
                .where(counted.status.in_([PENDING, PROCESSING, FAILED]))
                .group_by(counted.status)
            ).all()
            for status, count in rows:
                depths[(table, status)] = int(count)
    return depths


def run_forever(worker: Worker, stop: threading.Event) -> None:
    """The worker's own event loop, uvloop like the HTTP side: its sends go through fewer Python layers."""
    uvloop.run(worker.run(stop))
