"""Engines, sessions and migrations for the central store (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, delete, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, col

from normalizer.errors import StoreUnavailable
from sinks.store.health import StoreHealth
from sinks.store.models import ChannelState, utcnow

MIGRATIONS = Path(__file__).parent / "migrations"
# What the store raises when it is not there (server down, restarting, disk full, locked for too long), as
# opposed to what a bad statement raises: these become StoreUnavailable, every edge's "try later".
OUTAGE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
# PostgreSQL on a host that does not answer: give up connecting after this, instead of TCP's minutes.
CONNECT_TIMEOUT_S = 5
# The channel_state row the health probe writes and deletes while the store is down.
PROBE_KEY = "store.probe"


# SQLite result codes that mean "not now" (disk full, I/O error, locked), not "bad statement" (no such table).
_SQLITE_OUTAGES = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_NOMEM")


def is_outage(exc: BaseException) -> bool:
    """Whether an error from the driver means the store is not there, rather than a mistake of ours."""
    if not isinstance(exc, OUTAGE_ERRORS):
        return False
    cause = getattr(exc, "orig", None)
    if isinstance(cause, sqlite3.Error):
        return str(getattr(cause, "sqlite_errorname", "")).startswith(_SQLITE_OUTAGES)
    return True


def outage_message(exc: BaseException) -> str:
    """One line naming the driver's complaint, e.g. ``OperationalError: database or disk is full``."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}"[:300]


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLAlchemy would otherwise look for psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _json(value: Any) -> str:
    """JSON columns (raw headers, outbox payloads, attachments) written by orjson: the worker writes many."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# Integers orjson would read as floats (past 64 bits) have 19 digits or more; such a column is read by json.
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def _json_loads(value: str | bytes) -> Any:
    """JSON columns read by orjson (every claimed inbox row's meta and headers), with the stdlib's answer always.

    Where the two could differ the stdlib reads it: integers past 64 bits (orjson gives a float), and what
    orjson refuses (NaN, a lone surrogate, text that is not UTF-8) but ``json.loads`` accepts.
    """
    long_digits = _LONG_DIGITS.search(value) if isinstance(value, str) else _LONG_DIGITS_BYTES.search(value)
    if long_digits is None:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    return json.loads(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # We issue BEGIN ourselves (see _begin_immediate); pysqlite's own implicit BEGIN would defer the lock.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the provider hears "accepted" (group commit pays for the fsync).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_no_fsync(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass
class Store:
    """Where complaints live. ``engine`` writes; ``read_engine`` serves listings.

    On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` so two
    writers queue on the lock instead of failing on a lock upgrade; reads use
    a second engine with deferred transactions, which WAL lets run beside them.
    """

    url: str
    engine: Engine
    read_engine: Engine
    # SQLite has one writer at a time; threads of this process queue here for it instead of in
    # SQLite's busy handler, which sleeps in steps of up to 100 ms between tries.
    write_lock: threading.Lock | None = None
    health: StoreHealth = field(init=False)

    def __post_init__(self) -> None:
        self.health = StoreHealth(probe=self.probe_write)

    @contextmanager
    def _guarded(self, writing: bool) -> Iterator[None]:
        """Outage errors become ``StoreUnavailable`` (reported to ``health``).

        Only a committed write says the store is back: on a full disk reads still work while every write fails.
        """
        try:
            yield
        except OUTAGE_ERRORS as exc:
            if not is_outage(exc):
                raise
            message = outage_message(exc)
            self.health.failed(message)
            raise StoreUnavailable(f"store unavailable: {message}") from exc
        if writing:
            self.health.succeeded()

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # SQLite: a second writer engine whose commits skip the fsync (synchronous=NORMAL), for ``durable=False``.
    lazy_engine: Engine | None = None

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Session]:
        """A session in one transaction, committed on leaving, rolled back on error.

        Raises ``StoreUnavailable`` when the store is not there (see ``OUTAGE_ERRORS``).
        ``durable=False`` is for writes that may be lost in a power cut without harm (a worker's claim:
        the row is simply pending again): the commit does not wait for the disk. A later durable commit
        flushes them too.
        """
        with self._guarded(writing=True):
            if self.write_lock is None:
                with Session(self.engine, expire_on_commit=False) as session, session.begin():
                    if not durable:
                        session.execute(text("SET LOCAL synchronous_commit = off"))
                    yield session
                return
            engine = self.engine if durable or self.lazy_engine is None else self.lazy_engine
            if not self.write_lock.acquire(timeout=60):
                raise OperationalError("BEGIN IMMEDIATE", None, TimeoutError("waited 60 s for the SQLite write lock"))
            try:
                with Session(engine, expire_on_commit=False) as session, session.begin():
                    yield session
            finally:
                self.write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._guarded(writing=False), Session(self.read_engine, expire_on_commit=False) as session:
            yield session

    def ping(self) -> None:
        """Whether the store answers at all (``/readyz`` also asks ``health``, which knows about writes)."""
        with self._guarded(writing=False), self.read_engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def probe_write(self) -> None:
        """A write that leaves nothing behind but must reach the disk: a row put and taken back in one commit."""
        with self.write() as session:
            session.add(ChannelState(key=PROBE_KEY, value=None, updated_at=utcnow()))
            session.flush()
            session.execute(delete(ChannelState).where(col(ChannelState.key) == PROBE_KEY))

    def dispose(self) -> None:
        self.health.close()
        self.engine.dispose()
        if self.lazy_engine is not None:
            self.lazy_engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def application_name() -> str:
    return f"lapor-gateway/{socket.gethostname()}/{os.getpid()}"[:63]


def open_store(url: str, echo: bool = False) -> Store:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # The OS process id in pg_stat_activity: tells an operator (and the scale-out test) which process
        # of which host holds a connection or an advisory lock.
        connect_args: dict[str, Any] = (
            {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_S}
        )
        if "application_name" not in parsed.query:
            connect_args["application_name"] = application_name()
        engine = create_engine(
            url,
            echo=echo,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            connect_args=connect_args,
            json_serializer=_json,
            json_deserializer=_json_loads,
        )
        return Store(url=url, engine=engine, read_engine=engine)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"check_same_thread": False, "timeout": 10}
    options: dict[str, Any] = {
        "echo": echo,
        "connect_args": connect_args,
        "json_serializer": _json,
        "json_deserializer": _json_loads,
    }
    engine, lazy_engine, read_engine = (create_engine(url, **options) for _ in range(3))
    for each in (engine, lazy_engine, read_engine):
        event.listen(each, "connect", _sqlite_pragmas)
    event.listen(lazy_engine, "connect", _sqlite_no_fsync)

    @event.listens_for(engine, "begin")
    @event.listens_for(lazy_engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(read_engine, "begin")
    def _begin_deferred(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return Store(url=url, engine=engine, read_engine=read_engine, write_lock=threading.Lock(), lazy_engine=lazy_engine)


def alembic_config(store: Store) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = store.engine
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the schema up to date (``lapor-gateway db upgrade``, and ``serve`` at start)."""
    command.upgrade(alembic_config(store), revision)
