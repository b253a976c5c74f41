"""WhatsApp through the real gateway (SQLite and PostgreSQL): webhook → inbox → worker → complaint + reply.

A local HTTP server stands in for Meta's Graph API: it serves the media and
takes the replies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from channels.whatsapp import sign
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.meta_rig import fake_provider_api
from tests.channels.test_whatsapp import APP_SECRET, MESSAGES_PATH, SENT, media_routes, payload
from tests.support.e2e import (
    check_copies_make_one_complaint,
    eventually,
    sent_on_retry,
    stored_complaints,
    stored_inbox,
    stored_replies,
)
from tests.support.provider_api import Canned, ProviderApi

PHOTO = b"\xff\xd8\xff\xe0 JFIF: rubbish piling up at the TPS"
SENT_WAMID = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ4RTk2QjE0QzQ2QjA0QkI4RQA="


@pytest.fixture
def graph_api() -> Iterator[ProviderApi]:
    with fake_provider_api() as api:
        api.route("POST", MESSAGES_PATH, SENT)
        media_routes(api, "1003383421387256", PHOTO, "image/jpeg")
        yield api


@pytest.fixture
def gateway_client(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient], graph_api: ProviderApi
) -> Callable[..., TestClient]:
    def start(worker: dict[str, Any] | None = None, **overrides: Any) -> TestClient:
        whatsapp = {
            "enabled": True,
            "verify_token": "kominfo-verify",
            "app_secret": APP_SECRET,
            "access_token": "EAAG-test-token",
            "phone_number_id": "106540352242922",
            "api_base": graph_api.url,
            **overrides,
        }
        # The Graph API stand-in (and so its media URLs) listens on loopback.
        media = {"allow_private_hosts": True}
        return running_client(make_config(channels={"whatsapp": whatsapp}, worker=worker or {}, media=media))

    return start


def post_signed(client: TestClient, body: bytes) -> int:
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET), "Content-Type": "application/json"}
    return int(client.post("/webhooks/whatsapp", content=body, headers=headers).status_code)


def test_photo_message_becomes_one_complaint_with_its_photo_and_the_tracking_id_reaches_the_chat(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("image_with_caption.json")) == 200
        (request,) = eventually(lambda: graph_api.seen("POST", MESSAGES_PATH))
        # The photo is fetched by its own job, after the complaint and its acknowledgement.
        eventually(lambda: stored_complaints(store)[0].attachments, "the photo to be attached")
    (complaint,) = stored_complaints(store)
    assert complaint.channel == "whatsapp" and complaint.provider == "meta"
    assert complaint.body == "Sampah menumpuk di TPS Kelurahan Sukajadi"
    assert (complaint.reporter_name, complaint.reporter_phone) == ("Siti Aminah", "+6281234567890")
    assert [a["sha256"] for a in complaint.attachments] == [hashlib.sha256(PHOTO).hexdigest()]
    sent = request.json()
    assert sent["to"] == "6281234567890"
    assert complaint.tracking_id in sent["text"]["body"]
    (reply,) = stored_replies(store)
    assert (reply.status, reply.provider_message_id) == ("done", SENT_WAMID)


def test_redeliveries_and_concurrent_copies_make_one_complaint(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    body = payload("text.json")
    check_copies_make_one_complaint(
        gateway_client(), lambda client: post_signed(client, body), lambda: graph_api.seen("POST", MESSAGES_PATH), store
    )


def test_graph_api_500_leaves_the_reply_in_the_outbox_and_it_goes_out_on_retry(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    graph_api.route("POST", MESSAGES_PATH, Canned.json({"error": {"message": "unavailable"}}, status=500), SENT)
    with gateway_client(worker={"backoff_initial_s": 600, "backoff_max_s": 600}) as client:
        assert post_signed(client, payload("text.json")) == 200
        done = sent_on_retry(store)
        assert len(stored_complaints(store)) == 1  # the complaint stands whatever its reply does
    assert done.provider_message_id == SENT_WAMID
    assert len(graph_api.seen("POST", MESSAGES_PATH)) == 2


def test_statuses_update_the_reply_they_belong_to_and_make_no_complaint(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("text.json")) == 200
        eventually(lambda: stored_replies(store, status="done"))
        assert post_signed(client, payload("statuses_only.json")) == 200
        eventually(lambda: [r for r in stored_replies(store) if r.delivery_status in ("delivered", "read")])
        eventually(lambda: all(row.status in ("done", "ignored") for row in stored_inbox(store)))
    assert len(stored_complaints(store)) == 1
    assert [row.status for row in stored_inbox(store)] == ["done", "ignored", "ignored"]
    assert [reply.delivery_status for reply in stored_replies(store)] == ["read"]


def test_two_messages_in_one_notification_become_two_complaints_each_answered(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("multi_message.json")) == 200
        eventually(lambda: len(graph_api.seen("POST", MESSAGES_PATH)) == 2)
    complaints = stored_complaints(store)
    assert sorted(c.reporter_phone or "" for c in complaints) == ["+6281234567890", "+6285711112222"]
    recipients = sorted(r.json()["to"] for r in graph_api.seen("POST", MESSAGES_PATH))
    assert recipients == ["6281234567890", "6285711112222"]


def test_sticker_gets_the_help_text_and_no_complaint(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("sticker.json")) == 200
        (request,) = eventually(lambda: graph_api.seen("POST", MESSAGES_PATH))
    assert "LAPOR" in request.json()["text"]["body"]
    assert stored_complaints(store) == []


def test_forged_notification_is_refused_by_the_running_gateway(
    gateway_client: Callable[..., TestClient], store: Store
) -> None:
    body = payload("text.json")
    with gateway_client() as client:
        response = client.post("/webhooks/whatsapp", content=body, headers={"X-Hub-Signature-256": sign(body, "x")})
        handshake = client.get(
            "/webhooks/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": "kominfo-verify", "hub.challenge": "42"},
        )
    assert response.status_code == 403
    assert stored_inbox(store) == []
    assert handshake.text == "42"


def test_signed_malformed_json_is_refused_without_a_row(
    gateway_client: Callable[..., TestClient], store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("malformed_truncated.json")) == 400
        assert post_signed(client, json.dumps({"object": "x", "entry": 7}).encode()) == 400
    assert stored_inbox(store) == []


def test_user_without_phone_gets_a_complaint_without_phone_and_the_reply_by_business_scoped_id(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("username_only_sender.json")) == 200
        (request,) = eventually(lambda: graph_api.seen("POST", MESSAGES_PATH))
    (complaint,) = stored_complaints(store)
    assert (complaint.reporter_name, complaint.reporter_phone) == ("Rina", None)
    assert request.json()["recipient"] == "ID.1648738043044942"
    assert complaint.tracking_id in request.json()["text"]["body"]


def test_answering_our_acknowledgement_links_the_follow_up_even_without_a_window(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    with gateway_client(followup_window_minutes=0) as client:
        assert post_signed(client, payload("text.json")) == 200
        eventually(lambda: [r for r in stored_replies(store) if r.provider_message_id == SENT_WAMID])
        # The citizen taps a button under our acknowledgement: its context is our wamid.
        assert post_signed(client, payload("interactive_button_reply.json")) == 200
        eventually(lambda: len(stored_complaints(store)) == 2)
    first, follow_up = stored_complaints(store)
    assert follow_up.parent_tracking_id == first.tracking_id
    assert follow_up.body == "Jalan rusak"


def test_a_wamid_repeated_inside_one_notification_makes_one_complaint_and_one_reply(
    gateway_client: Callable[..., TestClient], graph_api: ProviderApi, store: Store
) -> None:
    notification = json.loads(payload("text.json"))
    value = notification["entry"][0]["changes"][0]["value"]
    value["messages"] = value["messages"] * 2
    with gateway_client() as client:
        assert post_signed(client, json.dumps(notification).encode()) == 200
        eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")
        eventually(lambda: all(row.status == "done" for row in stored_inbox(store)), "every inbox row done")
    assert len(stored_complaints(store)) == 1
    assert len(graph_api.seen("POST", MESSAGES_PATH)) == 1
