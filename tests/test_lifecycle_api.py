"""``/api/v1/complaints/{id}/events`` and ``/api/v1/agency/complaints``: roles, 409s, idempotency."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from gateway.auth import create_token
from gateway.config import Config
from sinks.store.db import Store
from tests.conftest import bearer
from tests.support.complaints import add_complaint, events

AGENCIES = {"dpupr": {"name": "Dinas PUPR", "categories": ["jalan"]}, "dlh": {"name": "DLH", "categories": ["sampah"]}}


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config(agencies=AGENCIES)


@pytest.fixture
def agency_token(store: Store) -> str:
    return create_token(store, "petugas-pupr", "agency", "dpupr")


def post_event(client: TestClient, token: str, tracking_id: str, body: dict[str, object], **headers: str) -> object:
    return client.post(f"/api/v1/complaints/{tracking_id}/events", json=body, headers={**bearer(token), **headers})


def test_an_admin_verifies_and_forwards_and_the_record_carries_its_events(
    client: TestClient, store: Store, admin_token: str
) -> None:
    tracking_id = add_complaint(store)
    verified = post_event(client, admin_token, tracking_id, {"to": "verified", "internal_note": "cek lokasi"})
    assert verified.status_code == 201, verified.text
    forwarded = post_event(client, admin_token, tracking_id.lower(), {"to": "forwarded"})
    assert forwarded.status_code == 201, forwarded.text
    assert forwarded.json()["record"]["agency"] == "dpupr"  # the one rule for "jalan"
    assert forwarded.json()["record"]["due_at"] is not None

    record = client.get(f"/api/v1/complaints/{tracking_id}", headers=bearer(admin_token)).json()
    assert [(e["from"], e["to"]) for e in record["events"]] == [("received", "verified"), ("verified", "forwarded")]
    assert record["events"][0]["internal_note"] == "cek lokasi"
    assert record["events"][0]["actor"] == {"kind": "staff", "name": "rina"}


def test_a_move_the_table_refuses_is_409_naming_the_current_and_allowed_statuses(
    client: TestClient, store: Store, admin_token: str
) -> None:
    tracking_id = add_complaint(store)
    answer = post_event(client, admin_token, tracking_id, {"to": "resolved", "public_note": "x"})
    assert answer.status_code == 409
    assert answer.json()["current"] == "received"
    assert answer.json()["allowed"] == ["verified", "rejected"]
    assert "received" in answer.json()["detail"] and "verified, rejected" in answer.json()["detail"]
    bad = post_event(client, admin_token, tracking_id, {"to": "rejected", "reason": "boring"})
    assert bad.status_code == 422


def test_idempotency_key_returns_the_same_event_and_refuses_another_body(
    client: TestClient, store: Store, admin_token: str
) -> None:
    tracking_id = add_complaint(store)
    first = post_event(client, admin_token, tracking_id, {"to": "verified"}, **{"Idempotency-Key": "v-1"})
    again = post_event(client, admin_token, tracking_id, {"to": "verified"}, **{"Idempotency-Key": "v-1"})
    other = post_event(client, admin_token, tracking_id, {"to": "rejected"}, **{"Idempotency-Key": "v-1"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 422)
    assert again.json()["event"]["id"] == first.json()["event"]["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(events(store, tracking_id)) == 1


def test_an_agency_sees_only_its_own_complaints_and_gets_403_everywhere_else(
    client: TestClient, store: Store, agency_token: str, agent_token: str
) -> None:
    ours = add_complaint(store, status="forwarded", agency="dpupr")
    theirs = add_complaint(store, status="forwarded", agency="dlh", category="sampah")
    add_complaint(store)  # still with Diskominfo

    listed = client.get("/api/v1/agency/complaints", headers=bearer(agency_token))
    assert listed.status_code == 200
    assert [item["tracking_id"] for item in listed.json()["items"]] == [ours]
    assert listed.json()["items"][0]["overdue"] is False

    for path in ("/api/v1/complaints", f"/api/v1/complaints/{ours}", "/api/v1/failed"):
        assert client.get(path, headers=bearer(agency_token)).status_code == 403, path
    assert client.get(f"/api/v1/agency/complaints/{theirs}", headers=bearer(agency_token)).status_code == 403
    assert client.get(f"/api/v1/complaints/{theirs}/events", headers=bearer(agency_token)).status_code == 403
    assert post_event(client, agency_token, theirs, {"to": "in_progress", "public_note": "x"}).status_code == 403
    # Agents (call-center) enter reports; they do not move them.
    assert post_event(client, agent_token, ours, {"to": "in_progress", "public_note": "x"}).status_code == 403
    assert client.get("/api/v1/agency/complaints", headers=bearer(agent_token)).status_code == 403


def test_an_agency_system_pushes_its_progress_and_answer(client: TestClient, store: Store, agency_token: str) -> None:
    tracking_id = add_complaint(store, status="forwarded", agency="dpupr")
    body = {"to": "in_progress", "public_note": "Tim ke lokasi.", "internal_note": "x"}
    progress = post_event(client, agency_token, tracking_id, body)
    done = post_event(client, agency_token, tracking_id, {"to": "resolved", "public_note": "Sudah ditambal."})
    assert (progress.status_code, done.status_code) == (201, 201)
    assert done.json()["event"]["actor"] == {"kind": "agency", "name": "petugas-pupr"}
    closed = post_event(client, agency_token, tracking_id, {"to": "closed"})
    assert closed.status_code == 403
    seen = client.get(f"/api/v1/agency/complaints/{tracking_id}", headers=bearer(agency_token)).json()
    assert [e["public_note"] for e in seen["events"]] == ["Tim ke lokasi.", "Sudah ditambal."]
    assert all("internal_note" not in e for e in seen["events"])


def test_an_agency_token_needs_a_configured_agency(store: Store, config: Config) -> None:
    from gateway.auth import check_agency_binding

    with pytest.raises(ValueError, match="needs --agency"):
        check_agency_binding("agency", None, config.agencies)
    with pytest.raises(ValueError, match="not configured"):
        check_agency_binding("agency", "dinsos", config.agencies)
    with pytest.raises(ValueError, match="agency role only"):
        check_agency_binding("admin", "dpupr", config.agencies)


def test_overdue_complaints_are_counted_in_metrics(client: TestClient, store: Store) -> None:
    from datetime import timedelta

    from sinks.store.models import utcnow

    add_complaint(store, status="forwarded", agency="dpupr", due_at=utcnow() - timedelta(hours=1))
    add_complaint(store, status="forwarded", agency="dpupr", due_at=utcnow() + timedelta(days=1))
    add_complaint(store, status="resolved", agency="dpupr", due_at=utcnow() - timedelta(days=1))  # done: not late
    text = client.get("/metrics").text
    assert 'lapor_complaints_overdue{agency="dpupr",status="forwarded"} 1.0' in text
    assert 'status="resolved"' not in text
