"""The durable inbox: every provider message is a committed row before anyone hears "accepted".

Edges call ``InboxWriter.accept``. A single writer thread takes whatever has
queued up and commits it in one transaction (group commit: one fsync for many
messages), then wakes each caller. Duplicates are stopped by the database's
unique key on (channel, provider, external_id) with ``ON CONFLICT DO NOTHING``;
a redelivery gets the id of the row that is already there.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import orjson
import structlog
from sqlalchemy import Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from channels.base import Accepted, InboxItem
from gateway import logs
from gateway.metrics import Metrics
from gateway.notify import INBOX_CHANNEL, notifier_for
from gateway.redact import without_secrets
from normalizer.errors import StoreUnavailable
from sinks.store.db import Store
from sinks.store.models import IGNORED, PENDING, InboxMessage, utcnow

log = structlog.get_logger(__name__)


# What a waiting caller holds: a thread's future, or an asyncio future with the loop that owns it.
Done = Future[Accepted] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Accepted]"]


@dataclass
class _Pending:
    item: InboxItem
    received_at: datetime
    done: Done


_STOP = object()


_INBOX: Table = InboxMessage.__table__  # type: ignore[attr-defined]
_COLUMNS: tuple[str, ...] = (
    "channel",
    "provider",
    "external_id",
    "received_at",
    "raw",
    "headers",
    "meta",
    "status",
    "last_error",
    "attempts",
    "next_attempt_at",
)


def _row_values(item: InboxItem, received_at: datetime) -> dict[str, Any]:
    return {
        "channel": item.channel,
        "provider": item.provider,
        "external_id": item.external_id,
        "received_at": received_at,
        "raw": item.raw,
        "headers": without_secrets(item.headers),  # signatures and tokens prove a delivery, they are not kept
        "meta": without_secrets(item.meta),
        "status": IGNORED if item.ignored_reason else PENDING,
        "last_error": item.ignored_reason,
        "attempts": 0,
        "next_attempt_at": received_at,
    }


def insert_inbox_row(session: Session, item: InboxItem, received_at: datetime) -> Accepted:
    """Insert one row, or find the one a previous delivery made. Runs inside the caller's transaction."""
    return insert_inbox_rows(session, [(item, received_at)])[0]


# PostgreSQL: a whole group in one statement (one round trip, not one per row), compiled once.
_INSERT_MANY = text(
    "INSERT INTO inbox (channel, provider, external_id, received_at, raw, headers, meta, status, last_error, "
    "attempts, next_attempt_at) "
    "SELECT * FROM unnest(CAST(:channel AS varchar[]), CAST(:provider AS varchar[]), CAST(:external_id AS varchar[]), "
    "CAST(:received_at AS timestamptz[]), CAST(:raw AS bytea[]), CAST(:headers AS json[]), CAST(:meta AS json[]), "
    "CAST(:status AS varchar[]), CAST(:last_error AS varchar[]), CAST(:attempts AS integer[]), "
    "CAST(:next_attempt_at AS timestamptz[])) "
    "ON CONFLICT (channel, provider, external_id) DO NOTHING "
    "RETURNING id, channel, provider, external_id"
)
_FIND_MANY = text(
    "SELECT id, channel, provider, external_id FROM inbox "
    "WHERE (channel, provider, external_id) IN (SELECT * FROM unnest("
    "CAST(:channel AS varchar[]), CAST(:provider AS varchar[]), CAST(:external_id AS varchar[])))"
)


def insert_inbox_rows(session: Session, batch: list[tuple[InboxItem, datetime]]) -> list[Accepted]:
    """Insert a group of rows (or find those a previous delivery made), in the caller's transaction.

    On PostgreSQL the group is two statements whatever its size; on SQLite one insert per row.
    Within a group, the first copy of a key is new and later copies are duplicates, as they would be
    one after the other.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        dbapi = connection.connection.driver_connection
        assert isinstance(dbapi, sqlite3.Connection)
        return _insert_sqlite_rows(dbapi, connection.dialect, batch)
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for item, received_at in batch:
        values = _row_values(item, received_at)
        for json_column in ("headers", "meta"):  # unnest takes the JSON columns as text
            values[json_column] = orjson.dumps(values[json_column], option=orjson.OPT_NON_STR_KEYS).decode()
        for name in _COLUMNS:
            columns[name].append(values[name])
    inserted = {(c, p, e): int(i) for i, c, p, e in session.execute(_INSERT_MANY, columns).all()}
    keys = [(item.channel, item.provider, item.external_id) for item, _ in batch]
    existing: dict[tuple[str, str, str], int] = {}
    missing = [key for key in dict.fromkeys(keys) if key not in inserted]
    if missing:
        found = session.execute(
            _FIND_MANY,
            {
                "channel": [k[0] for k in missing],
                "provider": [k[1] for k in missing],
                "external_id": [k[2] for k in missing],
            },
        ).all()
        existing = {(c, p, e): int(i) for i, c, p, e in found}
    results: list[Accepted] = []
    for key in keys:
        if key in inserted:
            results.append(Accepted(inbox_id=inserted.pop(key), duplicate=False))
            existing[key] = results[-1].inbox_id  # a later copy in this group is a duplicate of it
        else:
            results.append(Accepted(inbox_id=existing[key], duplicate=True))
    return results


# SQLite: the same statements on the driver's cursor, in the caller's transaction. SQLAlchemy's per-statement
# work was ~65 of the ~80 µs of CPU each row cost (and the inbox writer holds the interpreter lock meanwhile);
# each value still goes through its column's own bind processor, so the row is stored exactly as before.
_SQLITE_INSERT = (
    f"INSERT INTO inbox ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (channel, provider, external_id) DO NOTHING RETURNING id"
)
_SQLITE_FIND = "SELECT id FROM inbox WHERE channel = ? AND provider = ? AND external_id = ?"


@cache
def _bind_processors(dialect: Dialect) -> tuple[Callable[[Any], Any], ...]:
    processors = []
    for name in _COLUMNS:
        processor = _INBOX.c[name].type.bind_processor(dialect)
        processors.append(processor if processor is not None else _as_is)
    return tuple(processors)


def _as_is(value: Any) -> Any:
    return value


def _insert_sqlite_rows(
    dbapi: sqlite3.Connection, dialect: Dialect, batch: list[tuple[InboxItem, datetime]]
) -> list[Accepted]:
    processors = _bind_processors(dialect)
    cursor = dbapi.cursor()
    results: list[Accepted] = []
    try:
        for item, received_at in batch:
            values = _row_values(item, received_at)
            cursor.execute(
                _SQLITE_INSERT, [process(values[name]) for process, name in zip(processors, _COLUMNS, strict=True)]
            )
            inserted = cursor.fetchone()
            if inserted is not None:
                results.append(Accepted(inbox_id=int(inserted[0]), duplicate=False))
                continue
            cursor.execute(_SQLITE_FIND, (item.channel, item.provider, item.external_id))
            results.append(Accepted(inbox_id=int(cursor.fetchone()[0]), duplicate=True))
    finally:
        cursor.close()
    return results


class InboxWriter:
    """Accepts inbox items from any thread or event loop; commits them in groups."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        max_batch: int = 256,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._notifier = notifier_for(store)
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._started = False

    def submit(self, item: InboxItem) -> Future[Accepted]:
        """Queue an item; the future resolves once its row is committed (or the commit failed)."""
        done: Future[Accepted] = Future()
        self._queue.put(_Pending(item=item, received_at=utcnow(), done=done))
        return done

    async def accept(self, item: InboxItem) -> Accepted:
        """The ``Accept`` the edges await: returns after commit, raises ``StoreUnavailable`` otherwise.

        The caller waits on a future of its own loop, and the writer wakes each loop once per batch
        (``_settle``): a thread's future would cost a cross-thread wake-up of the loop per request.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Accepted] = loop.create_future()
        self._queue.put(_Pending(item=item, received_at=utcnow(), done=(loop, done)))
        return await done

    def accept_blocking(self, item: InboxItem, timeout: float | None = 30.0) -> Accepted:
        """For edges that live in a thread of their own (SMPP, IMAP)."""
        return self.submit(item).result(timeout=timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Pending] = [first]  # type: ignore[list-item]
            stop_after = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop_after = True
                    break
                batch.append(more)  # type: ignore[arg-type]
            self._commit(batch)
            if stop_after:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self._store.write() as session:
                results = insert_inbox_rows(session, [(each.item, each.received_at) for each in batch])
                # Heard at commit: wakes workers in other processes (see gateway/worker.py).
                self._notifier.announce_in(session, INBOX_CHANNEL)
        except StoreUnavailable as exc:
            # The store is not there: every item of the batch gets "try later" (the store logged the outage
            # once); trying them one by one would only knock on a closed door len(batch) times.
            self._store.health.refused_deliveries(len(batch))
            _settle([(each.done, exc) for each in batch])
            return
        except SQLAlchemyError as exc:
            if len(batch) > 1:
                # One bad item must not sink its neighbours: commit them one by one.
                for each in batch:
                    self._commit([each])
                return
            log.error(logs.INBOX_REJECTED, error=str(exc).splitlines()[0], batch=len(batch))
            error = StoreUnavailable(f"inbox could not commit: {type(exc).__name__}")
            _settle([(each.done, error) for each in batch])
            return
        self._on_commit()
        outcomes: list[tuple[Done, Accepted | BaseException]] = []
        for each, accepted in zip(batch, results, strict=True):
            item = each.item
            if accepted.duplicate:
                self._metrics.duplicates.labels(item.channel, item.provider).inc()
                log.info(logs.INBOX_DUPLICATE, channel=item.channel, provider=item.provider, inbox_id=accepted.inbox_id)
            else:
                self._metrics.accepted.labels(item.channel, item.provider).inc()
                log.debug(logs.INBOX_ACCEPTED, channel=item.channel, provider=item.provider, inbox_id=accepted.inbox_id)
            outcomes.append((each.done, accepted))
        _settle(outcomes)


def _settle(outcomes: list[tuple[Done, Accepted | BaseException]]) -> None:
    """Give each caller its result: threads' futures at once, each event loop's in one callback."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Accepted], Accepted | BaseException]]] = {}
    for done, outcome in outcomes:
        if isinstance(done, Future):
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)
        else:
            loop, future = done
            by_loop.setdefault(loop, []).append((future, outcome))
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop closed meanwhile: nobody is left to tell
            loop.call_soon_threadsafe(_resolve, waiting)


def _resolve(waiting: list[tuple[asyncio.Future[Accepted], Accepted | BaseException]]) -> None:
    for future, outcome in waiting:
        if future.done():  # the caller gave up (its request was cancelled); the row stands regardless
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
