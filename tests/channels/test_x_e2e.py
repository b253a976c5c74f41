"""X through the real gateway (SQLite and PostgreSQL): webhook → inbox → worker → complaint + DM reply."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from channels.x.api import dm_path
from gateway.config import Config
from sinks.store import queries
from sinks.store.db import Store
from tests.channels.meta_rig import fake_provider_api
from tests.channels.test_x import CITIZEN, CONSUMER_SECRET, OUR_ID, SENT, payload, signature
from tests.support.e2e import (
    check_copies_make_one_complaint,
    eventually,
    sent_on_retry,
    stored_complaints,
    stored_inbox,
)
from tests.support.provider_api import Canned, ProviderApi

DM = dm_path(CITIZEN)


@pytest.fixture
def x_api() -> Iterator[ProviderApi]:
    with fake_provider_api() as api:
        api.route("POST", DM, SENT)
        yield api


@pytest.fixture
def gateway_client(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient], x_api: ProviderApi
) -> Callable[..., TestClient]:
    def start(worker: dict[str, Any] | None = None) -> TestClient:
        settings = {
            "enabled": True,
            "consumer_secret": CONSUMER_SECRET,
            "user_id": OUR_ID,
            "access_token": "x-user-token",
            "api_base": x_api.url,
        }
        return running_client(make_config(channels={"x": settings}, worker=worker or {}))

    return start


def post_signed(client: TestClient, body: bytes) -> int:
    headers = {"x-twitter-webhooks-signature": signature(body), "Content-Type": "application/json"}
    return int(client.post("/webhooks/x", content=body, headers=headers).status_code)


def test_mention_becomes_a_public_complaint_by_the_handle_and_the_tracking_id_goes_back_by_dm(
    gateway_client: Callable[..., TestClient], x_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("mention.json")) == 200
        (request,) = eventually(lambda: x_api.seen("POST", DM))
    (complaint,) = stored_complaints(store)
    record = queries.complaint_record(complaint)
    assert (record["channel"], record["provider"], record["external_id"]) == ("x", "x", "954487130212257792")
    assert record["reporter"]["name"] == "@dewilestari"
    assert record["reporter"]["anonymity"] == "public"
    assert record["body"] == "lampu PJU di Jl. Sudirman mati semua sejak Senin, gelap dan rawan"
    assert complaint.tracking_id in request.json()["text"]


def test_dm_becomes_a_complaint_and_our_own_dm_does_not(
    gateway_client: Callable[..., TestClient], x_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("dm_own.json")) == 200
        assert post_signed(client, payload("dm_text.json")) == 200
        eventually(lambda: x_api.seen("POST", DM))
        eventually(lambda: all(row.status in ("done", "ignored") for row in stored_inbox(store)))
    (complaint,) = stored_complaints(store)
    assert complaint.body.startswith("saluran air tersumbat")
    assert [row.status for row in stored_inbox(store)] == ["ignored", "done"]
    assert len(x_api.seen("POST", DM)) == 1


def test_redeliveries_and_concurrent_copies_make_one_complaint(
    gateway_client: Callable[..., TestClient], x_api: ProviderApi, store: Store
) -> None:
    body = payload("dm_text.json")
    check_copies_make_one_complaint(
        gateway_client(), lambda client: post_signed(client, body), lambda: x_api.seen("POST", DM), store
    )


def test_x_api_500_leaves_the_reply_in_the_outbox_and_it_goes_out_on_retry(
    gateway_client: Callable[..., TestClient], x_api: ProviderApi, store: Store
) -> None:
    x_api.route("POST", DM, Canned.json({"title": "Service Unavailable"}, status=500), SENT)
    with gateway_client(worker={"backoff_initial_s": 600, "backoff_max_s": 600}) as client:
        assert post_signed(client, payload("dm_text.json")) == 200
        done = sent_on_retry(store)
        assert len(stored_complaints(store)) == 1
    assert done.provider_message_id == "1582838223456789012"
    assert len(x_api.seen("POST", DM)) == 2


def test_crc_and_forged_post_on_the_running_gateway(gateway_client: Callable[..., TestClient], store: Store) -> None:
    body = payload("dm_text.json")
    with gateway_client() as client:
        crc = client.get("/webhooks/x", params={"crc_token": "abc"})
        forged = client.post(
            "/webhooks/x", content=body, headers={"x-twitter-webhooks-signature": signature(body, "x")}
        )
    assert crc.json()["response_token"] == signature(b"abc")
    assert forged.status_code == 403
    assert stored_inbox(store) == []
