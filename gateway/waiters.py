"""Lets an HTTP request wait for the worker to finish the row it just put in the inbox."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.worker import Completion

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

    def complete(self, completions: list[Completion]) -> None:
        """Called by the worker (any thread) after its batch committed."""
        if self._loop is None:
            return
        with self._lock:
            ready = [(c, list(self._futures.get(c.key, []))) for c in completions if c.key in self._futures]
        for completion, futures in ready:
            for future in futures:
                self._loop.call_soon_threadsafe(_resolve, future, completion)


def _resolve(future: asyncio.Future[Completion], completion: Completion) -> None:
    if not future.done():
        future.set_result(completion)
