"""Engines, sessions and migrations for the central store (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLAlchemy would otherwise look for psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _json(value: Any) -> str:
    """JSON columns (raw headers, outbox payloads, attachments) written by orjson: the worker writes many."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


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

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # SQLite: a second writer engine whose commits skip the fsync (synchronous=NORMAL), for ``durable=False``.
    lazy_engine: Engine | None = None

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Session]:
        """A session in one transaction, committed on leaving, rolled back on error.

        ``durable=False`` is for writes that may be lost in a power cut without harm (a worker's claim:
        the row is simply pending again): the commit does not wait for the disk. A later durable commit
        flushes them too.
        """
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
        with Session(self.read_engine, expire_on_commit=False) as session:
            yield session

    def ping(self) -> None:
        with self.read_engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
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
        connect_args: dict[str, Any] = {}
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
        )
        return Store(url=url, engine=engine, read_engine=engine)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"check_same_thread": False, "timeout": 10}
    engine = create_engine(url, echo=echo, connect_args=connect_args, json_serializer=_json)
    lazy_engine = create_engine(url, echo=echo, connect_args=connect_args, json_serializer=_json)
    read_engine = create_engine(url, echo=echo, connect_args=connect_args, json_serializer=_json)
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
