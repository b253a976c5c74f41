"""Listing complaints: keyset pages, tampered cursors, searches with LIKE's own characters (both stores)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import DONE, InboxMessage
from tests.conftest import bearer

ONE_NOTIFICATION = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def _store_complaints(store: Store, bodies: list[str], received_at: datetime = ONE_NOTIFICATION) -> None:
    """Complaints that are parts of one inbox row (one notification): they share one received_at."""
    with store.write() as session:
        row = InboxMessage(
            channel="whatsapp",
            provider="meta",
            external_id="wamid.batch",
            received_at=received_at,
            raw=b"{}",
            status=DONE,
            next_attempt_at=received_at,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        for part, body in enumerate(bodies):
            queries.insert_complaint(
                session,
                dict(
                    tracking_id="",
                    inbox_id=row.id,
                    part=part,
                    kind="complaint",
                    channel="whatsapp",
                    provider="meta",
                    external_id=f"wamid.{part}",
                    received_at=received_at,
                    stored_at=received_at,
                    body=body,
                    attachments=[],
                ),
            )


def test_keyset_pages_through_complaints_sharing_one_received_at_return_each_once(store: Store) -> None:
    _store_complaints(store, [f"bagian {n}" for n in range(7)])
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        with store.read() as session:
            page = queries.list_complaints(session, limit=2, cursor=cursor)
            seen.extend(c.body for c in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"bagian {n}" for n in range(7))
    assert len(seen) == 7


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("50%", ["diskon 50% di pasar"]),
        ("%", ["diskon 50% di pasar"]),
        ("_", ["kode_pos salah"]),
        ("e_o", []),  # `_` is not "any one character"
        ("\\", ["jalan\\gang"]),
        ("pasar", ["diskon 50% di pasar"]),
    ],
)
def test_search_matches_percent_underscore_and_backslash_as_themselves(store: Store, q: str, found: list[str]) -> None:
    _store_complaints(store, ["diskon 50% di pasar", "kode_pos salah", "jalan\\gang", "lampu redup"])
    with store.read() as session:
        assert sorted(c.body for c in queries.list_complaints(session, q=q).items) == found


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor([1, 2]),
        _cursor({"a": 1, "b": 2}),
        _cursor(["2026-11-25T03:00:00Z", 2**64]),
        _cursor(["2026-11-25T03:00:00Z", -1]),
        _cursor(["2026-11-25T03:00:00Z", "7"]),
        _cursor(["2026-11-25T03:00:00", 7]),  # no time zone
        _cursor(["kemarin", 7]),
        _cursor(["2026-11-25T03:00:00Z", 7, 8]),
        _cursor(None),
        base64.urlsafe_b64encode(b"[" * 5000).decode(),
        "bukan base64!",
        "%%%",
    ],
    ids=lambda value: value[:24],
)
def test_a_tampered_cursor_is_a_value_error_naming_it(store: Store, cursor: str) -> None:
    with store.read() as session, pytest.raises(ValueError, match="cursor is not one this server gave out"):
        queries.list_complaints(session, cursor=cursor)


def test_tampered_input_to_the_api_is_4xx_naming_the_problem(
    client: TestClient, agent_token: str, admin_token: str
) -> None:
    tampered = client.get("/api/v1/complaints", params={"cursor": _cursor([1, 2])}, headers=bearer(agent_token))
    assert tampered.status_code == 422
    assert "cursor" in tampered.json()["detail"]
    beyond = client.get(
        "/api/v1/complaints", params={"cursor": _cursor(["2026-11-25T03:00:00Z", 2**64])}, headers=bearer(agent_token)
    )
    assert beyond.status_code == 422
    naive = client.get("/api/v1/complaints", params={"since": "2026-11-25T03:00:00"}, headers=bearer(agent_token))
    assert naive.status_code == 422
    assert "since needs a time zone" in naive.json()["detail"]
    for path in (f"/api/v1/failed/{2**64}", f"/api/v1/failed/inbox-{2**70}", "/api/v1/failed/inbox-²"):
        response = client.get(path, headers=bearer(admin_token))
        assert response.status_code == 404, path
        assert "is not a failed-message id" in response.json()["detail"]
    replay = client.post(f"/api/v1/failed/outbox-{2**64}/replay", headers=bearer(admin_token))
    assert replay.status_code == 404
