"""Manual entry's one path from a validated body to a stored complaint: used by the API and the web form.

The body goes into the inbox like any provider payload; the caller then waits
for the worker so the agent can read the tracking id to the caller on the line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi.concurrency import run_in_threadpool

from channels import manual
from channels.base import InboxItem
from gateway.parts import Parts
from normalizer.errors import StoreUnavailable
from sinks.store import queries
from sinks.store.models import DONE, FAILED, IGNORED

# How long a manual entry waits for the worker before answering "still processing" (202).
ENTRY_WAIT_S = 15.0
# How often a waiting entry checks that the store is still there.
STORE_CHECK_S = 0.5

STORED = 201
PROCESSING = 202
KEY_REUSED = 422
WORKER_FAILED = 500


@dataclass(frozen=True)
class EntryResult:
    """``status`` is the HTTP status the API answers with; ``body`` the record (201) or a detail."""

    status: int
    body: dict[str, Any]
    duplicate: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def tracking_id(self) -> str | None:
        return self.body.get("tracking_id") if self.status == STORED else None


def category_problem(category: str | None, categories: Mapping[str, Any]) -> str | None:
    """The complaint's category must come from the configured taxonomy."""
    if category is None or category in categories:
        return None
    return f"unknown category; allowed: {', '.join(categories)}"


async def submit(
    gateway: Parts, raw: bytes, entered_by: str, idempotency_key: str | None, content_type: str = ""
) -> EntryResult:
    """Put a validated ``ManualEntry`` body in the inbox and wait (a while) for its record."""
    meta = {"entered_by": entered_by, "idempotency_key": idempotency_key}
    item = InboxItem(
        channel="manual",
        provider=manual.PROVIDER,
        external_id=manual.external_id(raw, meta),
        raw=raw,
        headers={"content-type": content_type},
        meta=meta,
    )
    return await accept_and_wait(gateway, item)


async def accept_and_wait(gateway: Parts, item: InboxItem) -> EntryResult:
    """Put ``item`` in the inbox and wait (a while) for its record: manual entries, the web form, the public API.

    A repeated key with the same body answers the record it made; with another body, ``KEY_REUSED``.
    """
    raw = item.raw
    key = (item.channel, item.provider, item.external_id)
    with gateway.waiters.waiting(key) as completed:
        # StoreUnavailable rises to gateway/outage.py, which answers every caller's "try later" in one place.
        accepted = await gateway.inbox.accept(item)
        if accepted.duplicate and not await run_in_threadpool(_same_body, gateway, accepted.inbox_id, raw):
            return EntryResult(KEY_REUSED, {"detail": "Idempotency-Key was already used with a different body"})
        # A redelivered key may be long finished; a new row cannot be, so it only waits.
        answer = await run_in_threadpool(_stored_answer, gateway, accepted.inbox_id) if accepted.duplicate else None
        if answer is None:
            answer = await _wait_for_worker(gateway, accepted.inbox_id, completed)
    if answer is None:
        return EntryResult(
            PROCESSING, {"detail": "accepted; the record is being processed", "inbox_id": accepted.inbox_id}
        )
    status, body = answer
    headers = {"Idempotent-Replayed": "true"} if accepted.duplicate else {}
    return EntryResult(status, body, duplicate=accepted.duplicate, headers=headers)


def _stored_answer(gateway: Parts, inbox_id: int) -> tuple[int, dict[str, Any]] | None:
    """The answer for a row the worker has finished, or None while it is still pending."""
    with gateway.store.read() as session:
        row = queries.inbox_row(session, inbox_id)
        if row is None or row.status not in (DONE, FAILED, IGNORED):
            return None
        if row.status == FAILED:
            return WORKER_FAILED, {"detail": "the entry was accepted but could not be processed", "inbox_id": inbox_id}
        complaints = queries.complaints_for_inbox(session, inbox_id)
        return STORED, queries.complaint_record(complaints[0])


def _same_body(gateway: Parts, inbox_id: int, raw: bytes) -> bool:
    with gateway.store.read() as session:
        row = queries.inbox_row(session, inbox_id)
        return row is not None and row.raw == raw


async def _wait_for_worker(
    gateway: Parts, inbox_id: int, completed: asyncio.Future[Any]
) -> tuple[int, dict[str, Any]] | None:
    """Wait for the worker's word: from its thread in this process, or from ``waiters.follow_store``.

    The row is committed already, so when the store goes away meanwhile the answer is "accepted, still
    processing" (202) at once, rather than a wait for a worker that cannot write.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ENTRY_WAIT_S
    # asyncio.wait leaves the future alone when it times out (wait_for would need a shield and a task).
    while not (await asyncio.wait((completed,), timeout=min(STORE_CHECK_S, ENTRY_WAIT_S)))[0]:
        if gateway.store.health.is_down:
            return None
        if loop.time() >= deadline:
            return await _look_once(gateway, inbox_id)
    completion = completed.result()
    if completion.status == DONE and completion.records:
        return STORED, completion.records[0]
    return await _look_once(gateway, inbox_id)


async def _look_once(gateway: Parts, inbox_id: int) -> tuple[int, dict[str, Any]] | None:
    # The worker may have finished while nobody listened (e.g. a lease taken over): look once.
    try:
        return await run_in_threadpool(_stored_answer, gateway, inbox_id)
    except StoreUnavailable:
        return None  # committed before the store went: "accepted, still processing"
