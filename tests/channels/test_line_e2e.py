"""LINE through the real gateway (SQLite and PostgreSQL): webhook → inbox → worker → complaint + reply.

A local HTTP server stands in for the Messaging API: it serves the content API and takes replies and pushes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from channels.line.api import PUSH_PATH, REPLY_PATH
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.meta_rig import fake_provider_api
from tests.channels.test_line import SECRET, SENT, USER, payload, signature
from tests.support.e2e import (
    check_copies_make_one_complaint,
    eventually,
    sent_on_retry,
    stored_complaints,
    stored_inbox,
    stored_replies,
)
from tests.support.provider_api import Canned, ProviderApi

PHOTO = b"\xff\xd8\xff\xe0 JFIF: genangan air di Jl. Pemuda"
CONTENT = "/v2/bot/message/354718705033693859/content"


@pytest.fixture
def line_api() -> Iterator[ProviderApi]:
    with fake_provider_api() as api:
        api.route("POST", REPLY_PATH, SENT)
        api.route("POST", PUSH_PATH, SENT)
        api.route("GET", CONTENT, Canned(body=PHOTO, content_type="image/jpeg"))
        api.route("GET", f"/v2/bot/profile/{USER}", Canned.json({"displayName": "Dewi", "userId": USER}))
        yield api


@pytest.fixture
def gateway_client(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient], line_api: ProviderApi
) -> Callable[..., TestClient]:
    def start(worker: dict[str, Any] | None = None, **overrides: Any) -> TestClient:
        settings = {
            "enabled": True,
            "channel_secret": SECRET,
            "channel_access_token": "line-access-token",
            "api_base": line_api.url,
            "data_api_base": line_api.url,
            **overrides,
        }
        # The content API stand-in listens on loopback, which production refuses.
        media = {"allow_private_hosts": True}
        return running_client(make_config(channels={"line": settings}, worker=worker or {}, media=media))

    return start


def post_signed(client: TestClient, body: bytes) -> int:
    return int(client.post("/webhooks/line", content=body, headers={"X-Line-Signature": signature(body)}).status_code)


def fresh(name: str) -> bytes:
    """The documented example with the event's time set to now, so its reply token is still good."""
    body = json.loads(payload(name))
    for event in body["events"]:
        event["timestamp"] = int(time.time() * 1000)
    return json.dumps(body).encode()


def sent_texts(api: ProviderApi) -> list[str]:
    requests = api.seen("POST", REPLY_PATH) + api.seen("POST", PUSH_PATH)
    return [request.json()["messages"][0]["text"] for request in requests]


def test_photo_becomes_a_complaint_whose_ack_goes_by_reply_token_and_its_media_job_attaches_the_photo(
    gateway_client: Callable[..., TestClient], line_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, fresh("image.json")) == 200
        (request,) = eventually(lambda: line_api.seen("POST", REPLY_PATH))
        eventually(lambda: stored_complaints(store)[0].attachments, "the photo to be attached")
    (complaint,) = stored_complaints(store)
    assert (complaint.channel, complaint.provider, complaint.reply_address) == ("line", "line", USER)
    assert complaint.reporter_name == "Dewi"  # from the profile API: the webhook carries no name
    assert [a["sha256"] for a in complaint.attachments] == [hashlib.sha256(PHOTO).hexdigest()]
    assert request.json()["replyToken"] == "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA"
    assert complaint.tracking_id in request.json()["messages"][0]["text"]
    assert line_api.seen("POST", PUSH_PATH) == []


def test_reply_past_the_token_window_goes_by_push(
    gateway_client: Callable[..., TestClient], line_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, payload("text.json")) == 200  # the documented 2016 timestamp: long expired
        (request,) = eventually(lambda: line_api.seen("POST", PUSH_PATH))
    (complaint,) = stored_complaints(store)
    assert complaint.body == "lampu jalan mati di Jl. Pemuda depan masjid sejak 3 hari"
    assert request.json()["to"] == USER
    assert complaint.tracking_id in request.json()["messages"][0]["text"]
    assert line_api.seen("POST", REPLY_PATH) == []


def test_redeliveries_and_concurrent_copies_make_one_complaint(
    gateway_client: Callable[..., TestClient], line_api: ProviderApi, store: Store
) -> None:
    first, again = payload("text.json"), payload("text_redelivered.json")
    posts = iter([first] * 6 + [again])
    check_copies_make_one_complaint(
        gateway_client(), lambda client: post_signed(client, next(posts)), lambda: sent_texts(line_api), store
    )


def test_messaging_api_500_leaves_the_reply_in_the_outbox_and_it_goes_out_on_retry(
    gateway_client: Callable[..., TestClient], line_api: ProviderApi, store: Store
) -> None:
    line_api.route("POST", PUSH_PATH, Canned.json({"message": "Internal error"}, status=500), SENT)
    with gateway_client(worker={"backoff_initial_s": 600, "backoff_max_s": 600}) as client:
        assert post_signed(client, payload("text.json")) == 200
        done = sent_on_retry(store)
        assert len(stored_complaints(store)) == 1
    assert done.provider_message_id == "461230966842064897"
    assert len(line_api.seen("POST", PUSH_PATH)) == 2


def test_follow_is_greeted_sticker_gets_help_unfollow_is_ignored_and_none_is_a_complaint(
    gateway_client: Callable[..., TestClient], line_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        for name in ("follow.json", "sticker.json", "unfollow.json"):
            assert post_signed(client, fresh(name)) == 200
        eventually(lambda: len(sent_texts(line_api)) == 2)
        eventually(lambda: all(row.status in ("done", "ignored") for row in stored_inbox(store)))
    assert stored_complaints(store) == []
    greeting, help_text = sorted(sent_texts(line_api), key=lambda text: "Terima kasih" not in text)
    assert greeting.startswith("Terima kasih") and "LAPOR" in help_text
    assert [row.status for row in stored_inbox(store)] == ["done", "done", "ignored"]


def test_second_message_within_the_window_follows_up_the_first(
    gateway_client: Callable[..., TestClient], line_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_signed(client, fresh("text.json")) == 200
        eventually(lambda: stored_replies(store, status="done"))
        assert post_signed(client, fresh("location.json")) == 200
        eventually(lambda: len(stored_complaints(store)) == 2)
    first, follow_up = stored_complaints(store)
    assert follow_up.parent_tracking_id == first.tracking_id
    assert (follow_up.lat, follow_up.lon) == (-6.5971, 106.806)


def test_forged_or_unsigned_webhook_is_refused_and_stores_nothing(
    gateway_client: Callable[..., TestClient], store: Store
) -> None:
    body = payload("text.json")
    with gateway_client() as client:
        forged = client.post("/webhooks/line", content=body, headers={"X-Line-Signature": signature(body, "x")})
        missing = client.post("/webhooks/line", content=body)
    assert (forged.status_code, missing.status_code) == (403, 403)
    assert stored_inbox(store) == []
