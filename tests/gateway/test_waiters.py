"""``waiters.follow_store``: the loop that answers requests whose rows a worker elsewhere finished."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.waiters import Waiters, follow_store
from sinks.store.db import open_store


@pytest.mark.parametrize("steps", range(6))
def test_the_loop_ends_when_cancelled_just_as_a_wake_up_arrives(tmp_path: Path, steps: int) -> None:
    """Shutdown cancels the loop; a worker's wake-up may land in the same turn of the event loop.

    With ``asyncio.wait_for`` (Python 3.11) the cancel was swallowed for some of these orderings and
    the loop ran on, so the app's lifespan waited for it for ever (seen as a 300 s test timeout).
    """
    store = open_store(f"sqlite:///{tmp_path}/store.db")

    async def cancelled_in_time() -> bool:
        wake = asyncio.Event()
        task = asyncio.create_task(follow_store(Waiters(), store, wake, 60.0))
        for _ in range(2):
            await asyncio.sleep(0)  # the loop is waiting for its wake-up
        wake.set()
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        ended = task.cancelled()
        task.cancel()  # a swallowed cancel leaves it running: end it here, the assertion tells
        await asyncio.wait({task}, timeout=5)
        return ended

    try:
        assert asyncio.run(cancelled_in_time())
    finally:
        store.dispose()
