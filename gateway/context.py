"""What the gateway lends every channel: durable state, attachment files, a single-instance lock."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, delete, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from channels.base import Accept, ChannelContext
from channels.media import MediaLimits
from normalizer.errors import StoreUnavailable
from normalizer.types import Attachment
from sinks.store.db import Store
from sinks.store.models import ChannelState, utcnow


class DatabaseState:
    """``StateStore`` on the ``channel_state`` table; each call is its own committed transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key: str) -> Any | None:
        with self._store.read() as session:
            found = session.get(ChannelState, key)
            return found.value if found else None

    def put(self, key: str, value: Any) -> None:
        with self._store.write() as session:
            found = session.get(ChannelState, key)
            if found is None:
                session.add(ChannelState(key=key, value=value, updated_at=utcnow()))
            else:
                found.value = value
                found.updated_at = utcnow()

    def delete(self, key: str) -> None:
        with self._store.write() as session:
            session.execute(delete(ChannelState).where(col(ChannelState.key) == key))

    def items(self, prefix: str) -> list[tuple[str, Any]]:
        with self._store.read() as session:
            rows = session.execute(
                select(ChannelState).where(col(ChannelState.key).startswith(prefix)).order_by(col(ChannelState.key))
            ).scalars()
            return [(row.key, row.value) for row in rows]


class AttachmentFiles:
    """Attachments as files under ``<data_dir>/attachments/<sha256[:2]>/<sha256>``: the same bytes are kept once."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "attachments"

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def __call__(self, data: bytes, filename: str | None, content_type: str | None) -> Attachment:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.exists():
            try:
                _write_atomically(target, data)
            except OSError as exc:
                if exc.errno in _DISK_FULL:
                    # Retryable: the row waits in the inbox until there is room again, it is not dead-lettered.
                    raise StoreUnavailable(f"attachments: {os.strerror(exc.errno or 0)} under {self.root}") from exc
                raise
        return Attachment(filename=filename, content_type=content_type, size=len(data), sha256=digest)


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary name, fsynced, then renamed: a crash never leaves half a file under the hash.
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle:
        try:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            os.unlink(handle.name)  # a half-written file would only take the room that ran out
            raise
    os.replace(handle.name, target)


LOCK_CHECK_S = 5.0


async def _watch_lock(
    connection: Connection, guard: threading.Lock, holder: asyncio.Task[Any], lost: asyncio.Event
) -> None:
    """Stop the holder when the session that holds the lock breaks (a database restart, a cut connection)."""
    while True:
        await asyncio.sleep(LOCK_CHECK_S)
        try:
            await asyncio.to_thread(_ping, connection, guard)
        except SQLAlchemyError:
            lost.set()
            holder.cancel()
            return


def _ping(connection: Connection, guard: threading.Lock) -> None:
    with guard:
        connection.execute(text("SELECT 1"))
        connection.commit()


def advisory_key(schema: str, name: str) -> int:
    """The PostgreSQL advisory lock key of a single service (also how an operator finds its holder in pg_locks)."""
    return zlib.crc32(f"{schema}:{name}".encode())


def exclusive_lock(store: Store, data_dir: Path) -> Callable[[str], AbstractAsyncContextManager[None]]:
    """An async context manager held by one gateway instance at a time, per name.

    PostgreSQL: a session-level advisory lock on a dedicated connection (it is
    released if the process dies, so another instance takes over). SQLite: an
    ``flock`` on a file beside the data, which is as far as SQLite goes anyway.
    """

    @contextlib.asynccontextmanager
    async def postgres(name: str) -> AsyncIterator[None]:
        with store.engine.connect() as connection:
            # Advisory locks are database-wide: installations in other schemas of one database keep their own.
            key = advisory_key(str(connection.execute(text("SELECT current_schema()")).scalar()), name)
            while not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                connection.rollback()
                await asyncio.sleep(2.0)
            connection.commit()
            holder = asyncio.current_task()
            lost = asyncio.Event()
            guard = threading.Lock()  # the watch's ping runs in a thread; one user of the connection at a time
            watch = asyncio.create_task(_watch_lock(connection, guard, holder, lost)) if holder is not None else None
            try:
                yield
            except asyncio.CancelledError:
                if lost.is_set() and holder is not None:
                    holder.uncancel()  # the cancel was ours, and it is answered by the error below
                    # Our session (and with it the lock) is gone: another instance may run the service now.
                    raise StoreUnavailable(f"lost the advisory lock of {name}; taking it again") from None
                raise
            finally:
                if watch is not None:
                    watch.cancel()
                if not lost.is_set():
                    # A lock whose connection the server cut (an outage, a restart) is gone with it: nothing to undo.
                    with guard, contextlib.suppress(SQLAlchemyError):
                        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                        connection.commit()

    @contextlib.asynccontextmanager
    async def file_lock(name: str) -> AsyncIterator[None]:
        locks = data_dir / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        safe = hashlib.sha256(name.encode()).hexdigest()[:16]
        with open(locks / f"{safe}.lock", "w") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(1.0)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    return postgres if store.is_postgres else file_lock


def context_factory(
    store: Store, accept: Accept, public_url: str, data_dir: Path, media: MediaLimits | None = None
) -> Callable[[httpx.AsyncClient], ChannelContext]:
    state = DatabaseState(store)
    attachments = AttachmentFiles(data_dir)
    exclusive = exclusive_lock(store, data_dir)

    def make(http: httpx.AsyncClient) -> ChannelContext:
        return ChannelContext(
            accept=accept,
            public_url=public_url,
            data_dir=data_dir,
            state=state,
            save_attachment=attachments,
            exclusive=exclusive,
            http=http,
            media=media or MediaLimits(),
        )

    return make
