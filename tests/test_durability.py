"""Nothing acknowledged is ever lost: kill -9 the gateway mid-stream and count what survived."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from sinks.store.db import open_store
from sinks.store.models import Complaint, InboxMessage
from tests.support.server import cli, free_port, serve, write_config

ENTRIES = 200
THREADS = 6


def test_every_acknowledged_entry_survives_kill_9_exactly_once(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, db_url, port)
    cli(config, "db", "upgrade")
    token = cli(config, "tokens", "create", "--name", "siti", "--role", "agent").strip()
    served = serve(config, port, tmp_path / "serve.log")

    acknowledged: dict[str, str] = {}  # idempotency key -> tracking id (or "accepted" for a 202)
    lock = threading.Lock()
    killed = threading.Event()

    def post(number: int) -> None:
        key = f"durability-{number:04d}"
        if killed.is_set():
            return
        try:
            response = httpx.post(
                f"{served.url}/api/v1/complaints",
                json={"body": f"laporan {number}", "source": "phone"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                timeout=20,
            )
        except httpx.HTTPError:
            return  # no answer: the client does not know, and neither do we
        with lock:
            if response.status_code == 201:
                acknowledged[key] = response.json()["tracking_id"]
            elif response.status_code == 202:
                acknowledged[key] = "accepted"
            if len(acknowledged) >= ENTRIES // 2 and not killed.is_set():
                killed.set()
                served.kill_hard()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(post, range(ENTRIES)))
    assert killed.is_set(), "the gateway was never killed: the test proved nothing"
    assert len(acknowledged) >= ENTRIES // 2

    # Restart: the worker finishes whatever was accepted but not yet processed.
    restarted = serve(config, port, tmp_path / "serve.log")
    try:
        store = open_store(db_url)
        for _ in range(300):
            with store.read() as session:
                pending = session.execute(
                    select(func.count()).select_from(InboxMessage).where(col(InboxMessage.status) != "done")
                ).scalar_one()
            if pending == 0:
                break
            threading.Event().wait(0.1)
        with store.read() as session:
            rows = session.execute(select(Complaint.external_id, Complaint.tracking_id)).all()
        store.dispose()
    finally:
        restarted.stop()

    stored: dict[str, list[str]] = {}
    for external_id, tracking_id in rows:
        stored.setdefault(external_id.removeprefix("siti:"), []).append(tracking_id)
    assert all(len(ids) == 1 for ids in stored.values()), "a complaint was stored twice"
    for key, tracking_id in acknowledged.items():
        assert key in stored, f"{key} was acknowledged but is lost"
        if tracking_id != "accepted":
            assert stored[key] == [tracking_id]
