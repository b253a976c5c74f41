"""What a running gateway did, for every channel's end-to-end tests: a bounded wait, and reads of the store and API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlmodel import col

from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import Complaint, InboxMessage, OutboxMessage, utcnow
from tests.conftest import bearer

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str = "the condition", timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something truthy (the worker runs in its own thread); a bounded wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def post_at_once(base_url: str, path: str, body: bytes, headers: dict[str, str], copies: int) -> list[httpx.Response]:
    """``copies`` POSTs of one body to a served gateway at the same moment (a provider's retries racing)."""

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url) as http:
            return await asyncio.gather(*(http.post(path, content=body, headers=headers) for _ in range(copies)))

    return asyncio.run(post_all())


def check_copies_make_one_complaint(
    running: TestClient, post: Callable[[TestClient], int], sent: Callable[[], list[Any]], store: Store
) -> None:
    """A webhook delivered several times at once and once more after: all answered 200, one row, one complaint,
    one reply (``sent``: the replies the provider's API got)."""
    with running as client:
        with ThreadPoolExecutor(max_workers=4) as pool:
            codes = list(pool.map(lambda _: post(client), range(6)))
        codes.append(post(client))
        eventually(sent, "the reply at the provider")
        eventually(lambda: all(row.status == "done" for row in stored_inbox(store)), "every inbox row done")
    assert codes == [200] * 7
    assert len(stored_inbox(store)) == 1
    assert len(stored_complaints(store)) == 1
    assert len(sent()) == 1


def sent_on_retry(store: Store) -> OutboxMessage:
    """After a provider error on the first attempt: the reply waits, pending; brought forward, it goes out."""
    (waiting,) = eventually(lambda: [r for r in stored_replies(store) if r.attempts == 1], "the first attempt")
    assert (waiting.status, waiting.error_type) == ("pending", "ProviderError")
    retry_outbox_now(store)
    (done,) = eventually(lambda: stored_replies(store, status="done"), "the reply sent on retry")
    return done


def api_complaints(client: TestClient, token: str) -> list[dict[str, Any]]:
    """The complaints as the API lists them to an agent, oldest delivery first."""
    response = client.get("/api/v1/complaints", headers=bearer(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return sorted(items, key=lambda item: item["inbox_id"])


def stored_complaints(store: Store) -> list[Complaint]:
    with store.read() as session:
        return list(session.execute(select(Complaint).order_by(col(Complaint.id))).scalars())


def complaint_records(store: Store) -> list[dict[str, Any]]:
    """The stored complaints in the record shape the API and forwarders use."""
    return [queries.complaint_record(row) for row in stored_complaints(store)]


def stored_inbox(store: Store) -> list[InboxMessage]:
    with store.read() as session:
        return list(session.execute(select(InboxMessage).order_by(col(InboxMessage.id))).scalars())


def inbox_count(store: Store) -> int:
    with store.read() as session:
        return int(session.execute(select(func.count()).select_from(InboxMessage)).scalar_one())


def stored_outbox(store: Store, kind: str | None = None, status: str | None = None) -> list[OutboxMessage]:
    """Outbox rows in order, of one ``kind`` and ``status`` where given."""
    query = select(OutboxMessage).order_by(col(OutboxMessage.id))
    if kind is not None:
        query = query.where(col(OutboxMessage.kind) == kind)
    if status is not None:
        query = query.where(col(OutboxMessage.status) == status)
    with store.read() as session:
        return list(session.execute(query).scalars())


def stored_replies(store: Store, status: str | None = None) -> list[OutboxMessage]:
    return stored_outbox(store, kind="reply", status=status)


def retry_outbox_now(store: Store) -> None:
    """Bring every pending outbox row's next attempt forward (what waiting out the backoff would do)."""
    with store.write() as session:
        session.execute(
            update(OutboxMessage).where(col(OutboxMessage.status) == "pending").values(next_attempt_at=utcnow())
        )
