"""Messenger and Instagram through the real gateway (SQLite and PostgreSQL): webhook → inbox → worker →
complaint + reply through the Send API. Local HTTP servers stand in for the Graph API and Meta's CDN."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from channels.meta.signature import sign
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.meta_rig import fake_provider_api
from tests.channels.test_messenger import APP_SECRET, PSID, SEND_PATH, payload
from tests.support.e2e import (
    check_copies_make_one_complaint,
    eventually,
    sent_on_retry,
    stored_complaints,
    stored_inbox,
    stored_replies,
)
from tests.support.provider_api import Canned, ProviderApi

PHOTO = b"\xff\xd8\xff\xe0 JFIF: lubang di Jl. Pasar Minggu"
SENT = Canned.json({"recipient_id": PSID, "message_id": "m_OurAck0001"})


@pytest.fixture
def graph_api() -> Iterator[ProviderApi]:
    with fake_provider_api() as api:
        api.route("POST", SEND_PATH, SENT)
        yield api


@pytest.fixture
def cdn() -> Iterator[ProviderApi]:
    with ProviderApi(default=Canned(body=PHOTO, content_type="image/jpeg")) as server:
        yield server


@pytest.fixture
def gateway_client(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient], graph_api: ProviderApi
) -> Callable[..., TestClient]:
    def start(product: str = "messenger", worker: dict[str, Any] | None = None) -> TestClient:
        block = {
            "enabled": True,
            "verify_token": "kominfo-verify",
            "app_secret": APP_SECRET,
            "access_token": "EAAG-page-token",
            "api_base": graph_api.url,
        }
        # The Graph API and CDN stand-ins listen on loopback.
        media = {"allow_private_hosts": True}
        return running_client(make_config(channels={product: block}, worker=worker or {}, media=media))

    return start


def post_signed(client: TestClient, product: str, body: bytes) -> int:
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET), "Content-Type": "application/json"}
    return int(client.post(f"/webhooks/{product}", content=body, headers=headers).status_code)


@pytest.mark.parametrize("product", ["messenger", "instagram"])
def test_text_becomes_a_complaint_and_the_ack_goes_back_through_the_send_api(
    product: str, gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    with gateway_client(product) as client:
        assert post_signed(client, product, payload(product, "text.json")) == 200
        (request,) = eventually(lambda: graph_api.seen("POST", SEND_PATH), "the acknowledgement at the Send API")
        eventually(lambda: stored_replies(store, status="done"), "the reply marked sent")
    (complaint,) = stored_complaints(store)
    sender = json.loads(payload(product, "text.json"))["entry"][0]["messaging"][0]["sender"]["id"]
    assert (complaint.channel, complaint.provider, complaint.reply_address) == (product, product, sender)
    body = request.json()
    assert (body["recipient"], body["messaging_type"]) == ({"id": sender}, "RESPONSE")
    assert complaint.tracking_id in body["message"]["text"]
    (reply,) = stored_replies(store)
    assert reply.provider_message_id == "m_OurAck0001"


def test_a_photo_is_attached_by_its_media_job_after_the_ack(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, cdn: ProviderApi, store: Store
) -> None:
    body = payload("messenger", "image.json").replace(b"https://scontent.xx.fbcdn.net", cdn.url.encode())
    with gateway_client() as client:
        assert post_signed(client, "messenger", body) == 200
        eventually(lambda: graph_api.seen("POST", SEND_PATH), "the acknowledgement")
        eventually(lambda: stored_complaints(store)[0].attachments, "the photo to be attached")
    (complaint,) = stored_complaints(store)
    assert [a["sha256"] for a in complaint.attachments] == [hashlib.sha256(PHOTO).hexdigest()]
    assert "authorization" not in cdn.requests[0].headers


@pytest.mark.parametrize("product", ["messenger", "instagram"])
def test_redeliveries_and_concurrent_copies_make_one_complaint(
    product: str, gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    body = payload(product, "text.json")
    check_copies_make_one_complaint(
        gateway_client(product),
        lambda client: post_signed(client, product, body),
        lambda: graph_api.seen("POST", SEND_PATH),
        store,
    )


def test_send_api_500_leaves_the_reply_in_the_outbox_and_it_goes_out_on_retry(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    graph_api.route("POST", SEND_PATH, Canned.json({"error": {"message": "unavailable"}}, status=500), SENT)
    with gateway_client(worker={"backoff_initial_s": 600, "backoff_max_s": 600}) as client:
        assert post_signed(client, "messenger", payload("messenger", "text.json")) == 200
        done = sent_on_retry(store)
        assert len(stored_complaints(store)) == 1  # the complaint stands whatever its reply does
    assert done.provider_message_id == "m_OurAck0001"
    assert len(graph_api.seen("POST", SEND_PATH)) == 2


def test_echoes_and_deliveries_make_no_complaint_and_a_delivery_marks_our_reply(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    graph_api.route(
        "POST",
        SEND_PATH,
        Canned.json(
            {
                "recipient_id": PSID,
                "message_id": "m_OurAck0001ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
            }
        ),
    )
    with gateway_client() as client:
        assert post_signed(client, "messenger", payload("messenger", "text.json")) == 200
        eventually(lambda: stored_replies(store, status="done"), "the acknowledgement")
        for name in ("echo.json", "delivery.json", "read.json"):
            assert post_signed(client, "messenger", payload("messenger", name)) == 200
        eventually(lambda: [r for r in stored_replies(store) if r.delivery_status == "delivered"], "the delivery")
        eventually(lambda: all(row.status in ("done", "ignored") for row in stored_inbox(store)), "rows settled")
    assert len(stored_complaints(store)) == 1
    assert [row.status for row in stored_inbox(store)] == ["done", "ignored", "ignored", "ignored"]
