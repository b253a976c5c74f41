"""Telegram through the real gateway (SQLite and PostgreSQL): update → inbox → worker → complaint + reply.

A local HTTP server stands in for the Bot API (getFile, file downloads,
sendMessage, getUpdates); the gateway talks to it through ``api_base``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.config import Config
from gateway.context import DatabaseState
from sinks.store.db import Store
from tests.channels.meta_rig import fake_provider_api
from tests.channels.telegram_fakes import BOT_ID, TOKEN, sent_message
from tests.channels.test_telegram import SECRET, payload
from tests.support.e2e import (
    check_copies_make_one_complaint,
    eventually,
    sent_on_retry,
    stored_complaints,
    stored_inbox,
    stored_replies,
)
from tests.support.provider_api import Canned, ProviderApi

PHOTO = b"\xff\xd8\xff\xe0 JFIF: a cracked village bridge"
SEND = f"/bot{TOKEN}/sendMessage"
ACK_MESSAGE_ID = 117  # the id tests/payloads/telegram/reply_to_ack.json answers


def ok(result: Any) -> Canned:
    return Canned.json({"ok": True, "result": result})


@pytest.fixture
def bot_api() -> Iterator[ProviderApi]:
    with fake_provider_api() as api:
        api.route("POST", SEND, ok(sent_message(523901234, ACK_MESSAGE_ID, "ack")))
        file = {"file_id": "x", "file_unique_id": "y", "file_size": len(PHOTO), "file_path": "photos/file_7.jpg"}
        api.route("POST", f"/bot{TOKEN}/getFile", ok(file))
        api.route("GET", f"/file/bot{TOKEN}/photos/file_7.jpg", Canned(body=PHOTO, content_type="image/jpeg"))
        yield api


@pytest.fixture
def gateway_client(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient], bot_api: ProviderApi
) -> Callable[..., TestClient]:
    def start(worker: dict[str, Any] | None = None, **telegram: Any) -> TestClient:
        block = {"enabled": True, "token": TOKEN, "secret_token": SECRET, "api_base": bot_api.url, **telegram}
        # The Bot API stand-in (and so its file URLs) listens on loopback.
        media = {"allow_private_hosts": True}
        return running_client(make_config(channels={"telegram": block}, worker=worker or {}, media=media))

    return start


def post_update(client: TestClient, body: bytes) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    return int(client.post("/webhooks/telegram", content=body, headers=headers).status_code)


def sent_texts(api: ProviderApi) -> list[str]:
    return [request.form()["text"] for request in api.seen("POST", SEND)]


def test_photo_update_becomes_one_complaint_with_its_photo_and_the_tracking_id_reaches_the_chat(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_update(client, payload("photo_with_caption.json")) == 200
        (request,) = eventually(lambda: bot_api.seen("POST", SEND))
        # The photo is fetched by its own job, after the complaint and its acknowledgement.
        eventually(lambda: stored_complaints(store)[0].attachments, "the photo to be attached")
    (complaint,) = stored_complaints(store)
    assert (complaint.channel, complaint.provider) == ("telegram", "telegram")
    assert complaint.body == "Tumpukan sampah di pinggir Kali Code, sudah seminggu tidak diangkut"
    assert (complaint.reporter_name, complaint.reporter_telegram_id) == ("Dewi Lestari", "523901234")
    assert [a["sha256"] for a in complaint.attachments] == [hashlib.sha256(PHOTO).hexdigest()]
    assert bot_api.seen("POST", f"/bot{TOKEN}/getFile")[0].form()["file_id"] == "AgACAgUAAxkBAAIBZ2VhbGxfbGFyZ2U"
    form = request.form()
    assert form["chat_id"] == "523901234"
    assert complaint.tracking_id in form["text"]
    (inbox_row,) = stored_inbox(store)
    assert inbox_row.external_id == f"{BOT_ID}:871250007"


def test_redeliveries_and_concurrent_copies_make_one_complaint(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    body = payload("text.json")
    check_copies_make_one_complaint(
        gateway_client(), lambda client: post_update(client, body), lambda: bot_api.seen("POST", SEND), store
    )


def test_status_command_answers_with_the_complaints_status(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_update(client, payload("text.json")) == 200
        (complaint,) = eventually(lambda: stored_complaints(store))
        status = json.loads(payload("command_status.json"))
        status["message"]["text"] = f"/status {complaint.tracking_id}"
        assert post_update(client, json.dumps(status).encode()) == 200
        eventually(lambda: len(bot_api.seen("POST", SEND)) == 2)
    status_reply = sent_texts(bot_api)[1]
    assert complaint.tracking_id in status_reply and "diterima" in status_reply
    assert len(stored_complaints(store)) == 1


def test_start_command_gets_the_help_text_and_no_complaint(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_update(client, payload("command_start.json")) == 200
        eventually(lambda: bot_api.seen("POST", SEND))
    assert "LAPOR" in sent_texts(bot_api)[0]
    assert stored_complaints(store) == []


def test_album_parts_join_the_complaint_the_first_part_opened(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_update(client, payload("album_part_1.json")) == 200
        assert post_update(client, payload("album_part_2.json")) == 200
        eventually(lambda: len(stored_complaints(store)) == 2 and len(bot_api.seen("POST", SEND)) == 1)
        eventually(lambda: all(c.attachments for c in stored_complaints(store)), "both photos to be attached")
    first, second = stored_complaints(store)
    # One acknowledgement for the album, not one per photo.
    assert [reply.tracking_id for reply in stored_replies(store)] == [first.tracking_id]
    assert first.body == "Jembatan penghubung desa retak, foto dari dua sisi"
    assert second.parent_tracking_id == first.tracking_id
    assert len(first.attachments) == len(second.attachments) == 1


def test_answering_our_acknowledgement_links_the_follow_up_even_without_a_window(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    with gateway_client(followup_window_minutes=0) as client:
        assert post_update(client, payload("text.json")) == 200
        eventually(lambda: stored_replies(store, status="done"))
        assert post_update(client, payload("reply_to_ack.json")) == 200
        eventually(lambda: len(stored_complaints(store)) == 2)
    first, follow_up = stored_complaints(store)
    assert stored_replies(store)[0].provider_message_id == f"523901234:{ACK_MESSAGE_ID}"
    assert follow_up.parent_tracking_id == first.tracking_id


def test_bot_api_500_leaves_the_reply_in_the_outbox_and_it_goes_out_on_retry(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    failure = Canned.json({"ok": False, "error_code": 500, "description": "Internal Server Error"}, status=500)
    bot_api.route("POST", SEND, failure, ok(sent_message(523901234, 130, "ack")))
    with gateway_client(worker={"backoff_initial_s": 600, "backoff_max_s": 600}) as client:
        assert post_update(client, payload("text.json")) == 200
        done = sent_on_retry(store)
    assert done.provider_message_id == "523901234:130"


def test_polling_mode_takes_updates_from_get_updates_into_one_complaint_each(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    update = json.loads(payload("text.json"))
    bot_api.route("POST", f"/bot{TOKEN}/deleteWebhook", ok(True))
    bot_api.route("POST", f"/bot{TOKEN}/getUpdates", ok([update]), ok([update]), ok([]))
    with gateway_client(mode="polling", secret_token="") as client:
        assert client.post("/webhooks/telegram", content=b"{}").status_code == 404
        eventually(lambda: bot_api.seen("POST", SEND))
        offsets = eventually(lambda: [r.json().get("offset") for r in bot_api.seen("POST", f"/bot{TOKEN}/getUpdates")])
        eventually(lambda: len(bot_api.seen("POST", f"/bot{TOKEN}/getUpdates")) >= 3)
    (complaint,) = stored_complaints(store)
    assert complaint.body.startswith("drainase tersumbat")
    assert offsets[0] is None
    assert stored_inbox(store)[0].external_id == f"{BOT_ID}:871250001"
    assert DatabaseState(store).get(f"telegram:{BOT_ID}:offset") == 871250002


def test_location_sent_after_the_complaint_joins_it_with_its_coordinates(
    gateway_client: Callable[..., TestClient], bot_api: ProviderApi, store: Store
) -> None:
    with gateway_client() as client:
        assert post_update(client, payload("text.json")) == 200
        eventually(lambda: stored_complaints(store))
        assert post_update(client, payload("location.json")) == 200
        eventually(lambda: len(stored_complaints(store)) == 2)
    complaint, place = stored_complaints(store)
    assert place.parent_tracking_id == complaint.tracking_id
    assert (place.lat, place.lon) == (-7.797068, 110.370529)
