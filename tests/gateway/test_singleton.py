"""A service that must be single holds a PostgreSQL advisory lock: one holder, and a successor when it dies."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.context import advisory_key, exclusive_lock
from normalizer.errors import StoreUnavailable
from sinks.store.db import Store, open_store, upgrade

HOLD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from gateway.context import exclusive_lock
    from sinks.store.db import open_store

    async def main() -> None:
        async with exclusive_lock(open_store(sys.argv[1]), Path(sys.argv[2]))("poller"):
            print("holding", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def _holders(store: Store, name: str) -> list[str]:
    """application_name (lapor-gateway/<host>/<pid>) of every session holding the service's lock."""
    with store.engine.connect() as connection:
        key = advisory_key(str(connection.execute(text("SELECT current_schema()")).scalar()), name)
        rows = connection.execute(
            text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = CAST(:key AS oid)"
            ),
            {"key": key},
        ).all()
    return [row[0] for row in rows]


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    store = open_store(postgres_url)
    upgrade(store)
    yield store
    store.dispose()


def test_the_lock_moves_to_a_waiting_process_when_the_holder_is_killed(
    pg_store: Store, postgres_url: str, tmp_path: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, postgres_url, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert _holders(pg_store, "poller") == [f"lapor-gateway/{_host()}/{holder.pid}"]

        async def take_over() -> list[str]:
            waiting = asyncio.create_task(_hold_once(pg_store, tmp_path))
            await asyncio.sleep(3.0)
            assert not waiting.done(), "took a lock another process holds"
            holder.kill()  # kill -9: no unlock, PostgreSQL ends the session
            return await asyncio.wait_for(waiting, timeout=60)

        seen_while_held = asyncio.run(take_over())
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert len(seen_while_held) == 1 and seen_while_held[0].endswith(f"/{_pid()}")
    assert _holders(pg_store, "poller") == []  # released on the way out


async def _hold_once(store: Store, data_dir: Path) -> list[str]:
    """Take the lock (waiting as long as it takes), say who holds it, let go."""
    async with exclusive_lock(store, data_dir)("poller"):
        return await asyncio.to_thread(_holders, store, "poller")


def test_a_holder_whose_session_is_cut_stops_with_a_retryable_error(pg_store: Store, tmp_path: Path) -> None:
    async def hold() -> None:
        async with exclusive_lock(pg_store, tmp_path)("poller"):
            [name] = await asyncio.to_thread(_holders, pg_store, "poller")
            pid = name.rsplit("/", 1)[1]
            assert pid == str(_pid())
            with pg_store.engine.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = CAST(:key AS oid)"
                    ),
                    {"key": advisory_key(str(connection.execute(text("SELECT current_schema()")).scalar()), "poller")},
                )
            await asyncio.sleep(120)  # the service's work: stopped by the lock's watch, not by this sleep ending

    with pytest.raises(StoreUnavailable, match="lost the advisory lock of poller"):
        asyncio.run(asyncio.wait_for(hold(), timeout=60))


def _pid() -> int:
    return os.getpid()


def _host() -> str:
    return socket.gethostname()
