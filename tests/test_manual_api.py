"""Call-center entry through ``POST /api/v1/complaints`` and the listings, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from sinks.store.queries import SCHEMA_FIELDS
from tests.conftest import bearer

ENTRY: dict[str, Any] = {
    "body": "Lampu  jalan mati\u00a0sejak seminggu di Jl. Sudirman depan SDN 3",
    "subject": "PJU mati",
    "source": "phone",
    "category": "pju",
    "reporter": {"name": "Budi Santoso", "phone": "0812-3456-7890", "email": "Budi@Example.org"},
    "location": {"text": "Jl. Sudirman, Kota Bogor", "lat": -6.595, "lon": 106.816},
}
TRACKING_ID = re.compile(r"^LPR-[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{6}$")


def post(client: TestClient, token: str, body: Any, **headers: str) -> Any:
    return client.post("/api/v1/complaints", json=body, headers={**bearer(token), **headers})


def test_manual_entry_answers_201_with_the_full_schema_v1_record(client: TestClient, agent_token: str) -> None:
    response = post(client, agent_token, ENTRY)

    assert response.status_code == 201, response.text
    record = response.json()
    assert set(SCHEMA_FIELDS) <= set(record)
    assert TRACKING_ID.match(record["tracking_id"])
    assert record["channel"] == "manual"
    assert record["provider"] == "callcenter"
    assert record["source"] == "phone"
    assert record["kind"] == "complaint"
    assert record["entered_by"] == "siti"
    assert record["status"] == "received"
    assert record["body"] == "Lampu jalan mati sejak seminggu di Jl. Sudirman depan SDN 3"
    assert record["reporter"] == {
        "name": "Budi Santoso",
        "phone": "+6281234567890",
        "email": "budi@example.org",
        "telegram_id": None,
        "anonymity": "public",
    }
    assert record["location"]["lat"] == -6.595
    # The normalizer read the region from the location text ("Kota Bogor"); the agent's category stays.
    assert record["location"]["region_code"] == "32.71"
    assert record["location"]["region_level"] == "kota"
    assert record["location"]["region_path"] == [
        {"code": "32", "name": "Jawa Barat"},
        {"code": "32.71", "name": "Kota Bogor"},
    ]
    assert record["category"] == "pju"
    assert record["priority"] == "normal"
    assert record["auto"]["normalizer"]
    assert record["attachments"] == []
    assert record["parent_tracking_id"] is None
    assert isinstance(record["inbox_id"], int)


def test_unknown_fields_are_present_as_null(client: TestClient, agent_token: str) -> None:
    record = post(client, agent_token, {"body": "Sampah menumpuk", "source": "walk_in"}).json()

    assert record["subject"] is None
    assert record["category"] == "sampah"  # not given: the normalizer read it from the body
    assert record["location"] is None
    assert record["reporter"] == {
        "name": None,
        "phone": None,
        "email": None,
        "telegram_id": None,
        "anonymity": "public",
    }


def test_repeated_idempotency_key_returns_the_same_record(client: TestClient, agent_token: str) -> None:
    first = post(client, agent_token, ENTRY, **{"Idempotency-Key": "call-0001"})
    again = post(client, agent_token, ENTRY, **{"Idempotency-Key": "call-0001"})

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = client.get("/api/v1/complaints", headers=bearer(agent_token)).json()["items"]
    assert len(listed) == 1


def test_idempotency_key_reused_with_another_body_is_refused(client: TestClient, agent_token: str) -> None:
    post(client, agent_token, ENTRY, **{"Idempotency-Key": "call-0002"})
    other = post(client, agent_token, {**ENTRY, "body": "lain"}, **{"Idempotency-Key": "call-0002"})

    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["detail"]


def test_an_idempotency_key_over_200_characters_is_422_naming_the_header(client: TestClient, agent_token: str) -> None:
    response = post(client, agent_token, ENTRY, **{"Idempotency-Key": "k" * 201})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert post(client, agent_token, ENTRY, **{"Idempotency-Key": "k" * 200}).status_code == 201


def test_the_api_docs_still_describe_the_entry_route(client: TestClient) -> None:
    # The route reads its headers and body itself; its OpenAPI says what it takes.
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/complaints"]["post"]

    assert {p["name"] for p in operation["parameters"]} == {"Authorization", "Idempotency-Key"}
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"body", "source", "category", "reporter"} <= set(schema["properties"])
    assert schema["required"] == ["body", "source"]


def test_missing_token_is_401(client: TestClient) -> None:
    response = client.post("/api/v1/complaints", json=ENTRY)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_token_is_401(client: TestClient) -> None:
    assert post(client, "lpr_not-a-real-token", ENTRY).status_code == 401


def test_missing_body_is_422_naming_the_field(client: TestClient, agent_token: str) -> None:
    response = post(client, agent_token, {"source": "phone"})

    assert response.status_code == 422
    assert {"loc": ["body", "body"], "msg": "Field required", "type": "missing"} in response.json()["detail"]


def test_unknown_source_is_422_listing_the_allowed_ones(client: TestClient, agent_token: str) -> None:
    response = post(client, agent_token, {"body": "x", "source": "pigeon"})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "source"]
    for allowed in ("phone", "walk_in", "instagram", "facebook", "x", "radio", "whatsapp", "email", "letter", "other"):
        assert f"'{allowed}'" in error["msg"]


def test_unknown_category_is_422_listing_the_taxonomy(client: TestClient, agent_token: str) -> None:
    response = post(client, agent_token, {"body": "x", "source": "phone", "category": "ufo"})

    assert response.status_code == 422
    assert "pungli" in response.json()["detail"][0]["msg"]


def test_body_over_one_mebibyte_is_413(client: TestClient, agent_token: str) -> None:
    response = post(client, agent_token, {"body": "a" * (1024 * 1024), "source": "phone"})
    assert response.status_code == 413


def test_invalid_json_is_400(client: TestClient, agent_token: str) -> None:
    response = client.post("/api/v1/complaints", content=b"{not json", headers=bearer(agent_token))
    assert response.status_code == 400


def test_anonymous_reporter_has_no_identity_anywhere(client: TestClient, agent_token: str) -> None:
    entry = {**ENTRY, "reporter": {"name": "Pelapor", "phone": "081234567890", "anonymity": "anonymous"}}
    created = post(client, agent_token, entry).json()
    shown = client.get(f"/api/v1/complaints/{created['tracking_id']}", headers=bearer(agent_token)).json()
    listed = client.get("/api/v1/complaints", headers=bearer(agent_token)).json()["items"][0]

    for record in (created, shown, listed):
        assert record["reporter"] == {
            "name": None,
            "phone": None,
            "email": None,
            "telegram_id": None,
            "anonymity": "anonymous",
        }


def test_complaint_is_found_by_tracking_id_in_any_spelling(client: TestClient, agent_token: str) -> None:
    tracking_id = post(client, agent_token, ENTRY).json()["tracking_id"]

    for spelling in (tracking_id, tracking_id.lower(), tracking_id.removeprefix("LPR-")):
        response = client.get(f"/api/v1/complaints/{spelling}", headers=bearer(agent_token))
        assert response.status_code == 200
        assert response.json()["tracking_id"] == tracking_id
    assert client.get("/api/v1/complaints/LPR-ZZZZZZ", headers=bearer(agent_token)).status_code == 404


def test_listing_filters_and_pages_with_a_cursor(client: TestClient, agent_token: str) -> None:
    for number in range(7):
        post(client, agent_token, {"body": f"laporan nomor {number} banjir", "source": "radio"})
    post(client, agent_token, {"body": "jalan rusak", "source": "radio"})

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "banjir", "limit": 3, "channel": "manual"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/complaints", params=params, headers=bearer(agent_token)).json()
        seen.extend(item["body"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(f"laporan nomor {n} banjir" for n in range(7))
    assert len(seen) == len(set(seen))
    assert seen[0] == "laporan nomor 6 banjir"  # newest first
    other = client.get("/api/v1/complaints", params={"channel": "sms"}, headers=bearer(agent_token)).json()
    assert other["items"] == []
    future = client.get("/api/v1/complaints", params={"since": "2999-01-01T00:00:00Z"}, headers=bearer(agent_token))
    assert future.json()["items"] == []


def test_a_bad_cursor_is_422(client: TestClient, agent_token: str) -> None:
    response = client.get("/api/v1/complaints", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=bearer(agent_token))
    assert response.status_code == 422


def test_agents_get_403_on_the_failed_list(client: TestClient, agent_token: str, admin_token: str) -> None:
    assert client.get("/api/v1/failed", headers=bearer(agent_token)).status_code == 403
    assert client.post("/api/v1/failed/inbox-1/replay", headers=bearer(agent_token)).status_code == 403
    assert client.get("/api/v1/failed", headers=bearer(admin_token)).status_code == 200


def test_admins_can_enter_complaints_too(client: TestClient, admin_token: str) -> None:
    response = post(client, admin_token, ENTRY)
    assert response.status_code == 201
    assert response.json()["entered_by"] == "rina"


def test_with_the_worker_elsewhere_the_entry_still_answers_with_its_record(
    make_config: Any, store: Any, agent_token: str
) -> None:
    import threading

    from gateway.app import Gateway, create_app
    from gateway.worker import run_forever

    config = make_config(worker={"in_process": False})
    elsewhere = Gateway(make_config(), store)  # as `lapor-gateway worker` on another host would
    stop = threading.Event()
    worker = threading.Thread(target=run_forever, args=(elsewhere.worker, stop), daemon=True)
    worker.start()
    try:
        with TestClient(create_app(Gateway(config, store))) as client:
            response = post(client, agent_token, ENTRY, **{"Idempotency-Key": "elsewhere-1"})
    finally:
        stop.set()
        elsewhere.worker.wake.set()
        worker.join(timeout=10)

    assert response.status_code == 201, response.text
    assert TRACKING_ID.match(response.json()["tracking_id"])
    assert response.json()["entered_by"] == "siti"
