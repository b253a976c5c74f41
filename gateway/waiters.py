"""Lets an HTTP request wait for the worker to finish the row it just put in the inbox."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, tuple_
from sqlmodel import col

from gateway.worker import Completion
from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import DONE, FAILED, IGNORED, Complaint, InboxMessage

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
        """Keys somebody still waits for (a future already answered needs no look in the store)."""
        with self._lock:
            return [key for key, futures in self._futures.items() if any(not future.done() for future in futures)]

    def complete(self, completions: list[Completion]) -> None:
        """Called by the worker (any thread) after its batch committed: one wake-up of the loop per batch."""
        if self._loop is None:
            return
        with self._lock:
            ready = [(c, list(self._futures.get(c.key, []))) for c in completions if c.key in self._futures]
        if ready:
            self._loop.call_soon_threadsafe(_resolve_all, ready)


async def follow_store(waiters: Waiters, store: Store, wake: asyncio.Event, interval_s: float) -> None:
    """When workers in other processes finish our rows, nobody calls ``complete`` here: look in the store.

    One query covers every request that is waiting, however many there are; it runs when ``wake`` is
    set (a worker's announcement at its batch's commit, so once per batch) or after ``interval_s``.
    """
    while True:
        # Not asyncio.wait_for: on Python 3.11 a cancel that arrives as ``wake`` is set is swallowed by it,
        # and this loop then outlives the shutdown that cancelled it (the app's lifespan waited forever).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await wake.wait()
        wake.clear()
        keys = waiters.keys()
        if keys:
            finished = await asyncio.to_thread(_finished_rows, store, keys)
            if finished:
                waiters.complete(finished)


def _finished_rows(store: Store, keys: list[Key]) -> list[Completion]:
    inbox = InboxMessage.__table__  # type: ignore[attr-defined]
    with store.read() as session:
        rows = session.execute(
            select(inbox.c.id, inbox.c.channel, inbox.c.provider, inbox.c.external_id, inbox.c.status).where(
                tuple_(inbox.c.channel, inbox.c.provider, inbox.c.external_id).in_(keys),
                inbox.c.status.in_([DONE, FAILED, IGNORED]),
            )
        ).all()
        # The records of all of them in one more query, not one per row.
        records: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if rows:
            found = session.execute(
                select(Complaint)
                .where(col(Complaint.inbox_id).in_([row[0] for row in rows]))
                .order_by(col(Complaint.inbox_id), col(Complaint.part))
            ).scalars()
            for complaint in found:
                records[complaint.inbox_id].append(queries.complaint_record(complaint))
    return [
        Completion(inbox_id, (channel, provider, external_id), status, records=tuple(records[inbox_id]))
        for inbox_id, channel, provider, external_id, status in rows
    ]


def _resolve_all(ready: list[tuple[Completion, list[asyncio.Future[Completion]]]]) -> None:
    for completion, futures in ready:
        for future in futures:
            if not future.done():
                future.set_result(completion)
