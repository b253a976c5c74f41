"""Lets an HTTP request wait for the worker to finish the row it just put in the inbox."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, tuple_

from gateway.worker import Completion
from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import DONE, FAILED, IGNORED, InboxMessage

Key = tuple[str, str, str]


class Waiters:
    """Futures keyed by (channel, provider, external_id), resolved from the worker thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._futures: dict[Key, list[asyncio.Future[Completion]]] = defaultdict(list)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @contextmanager
    def waiting(self, key: Key) -> Iterator[asyncio.Future[Completion]]:
        """Register before the row is accepted, so a fast worker cannot finish before anyone listens."""
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._futures[key].append(future)
        try:
            yield future
        finally:
            with self._lock:
                futures = self._futures.get(key, [])
                if future in futures:
                    futures.remove(future)
                if not futures:
                    self._futures.pop(key, None)

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._futures)

    def complete(self, completions: list[Completion]) -> None:
        """Called by the worker (any thread) after its batch committed: one wake-up of the loop per batch."""
        if self._loop is None:
            return
        with self._lock:
            ready = [(c, list(self._futures.get(c.key, []))) for c in completions if c.key in self._futures]
        if ready:
            self._loop.call_soon_threadsafe(_resolve_all, ready)


async def poll_store(waiters: Waiters, store: Store, interval_s: float = 0.02) -> None:
    """With the worker in other processes, nobody calls ``complete`` here: look for finished rows instead.

    One query per tick covers every request that is waiting, however many there are.
    """
    while True:
        await asyncio.sleep(interval_s)
        keys = waiters.keys()
        if keys:
            finished = await asyncio.to_thread(_finished_rows, store, keys)
            if finished:
                waiters.complete(finished)


def _finished_rows(store: Store, keys: list[Key]) -> list[Completion]:
    inbox = InboxMessage.__table__  # type: ignore[attr-defined]
    completions: list[Completion] = []
    with store.read() as session:
        rows = session.execute(
            select(inbox.c.id, inbox.c.channel, inbox.c.provider, inbox.c.external_id, inbox.c.status).where(
                tuple_(inbox.c.channel, inbox.c.provider, inbox.c.external_id).in_(keys),
                inbox.c.status.in_([DONE, FAILED, IGNORED]),
            )
        ).all()
        for inbox_id, channel, provider, external_id, status in rows:
            records = tuple(queries.complaint_record(c) for c in queries.complaints_for_inbox(session, inbox_id))
            completions.append(Completion(inbox_id, (channel, provider, external_id), status, records=records))
    return completions


def _resolve_all(ready: list[tuple[Completion, list[asyncio.Future[Completion]]]]) -> None:
    for completion, futures in ready:
        for future in futures:
            if not future.done():
                future.set_result(completion)
