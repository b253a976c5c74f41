"""Twilio through the real gateway (SQLite and PostgreSQL): webhook → inbox → worker → complaint + reply via the API."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
from fastapi.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.auth import create_token
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.sms_http_support import PAYLOADS, serve_app
from tests.channels.test_twilio import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, sign
from tests.conftest import bearer
from tests.support.e2e import complaint_records, eventually, inbox_count, post_at_once, stored_inbox, stored_replies
from tests.support.provider_api import ANY, Canned, ProviderApi
from tests.web.support import PASSWORD, add_staff, csrf_of

MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
REPLY_SID = "SMfeedface0000000000000000000000aa"
TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
SENT = Canned(
    status=201, body=b'{"sid": "%s", "status": "queued"}' % REPLY_SID.encode(), content_type="application/json"
)
ACK = "Laporan Anda diterima. No. {0}. Cek status: kirim STATUS {0}"


def payload(name: str, api: ProviderApi | None = None) -> bytes:
    raw = (PAYLOADS / "twilio" / name).read_bytes()
    if api is not None:  # media URLs point at the stand-in API instead of api.twilio.com
        raw = raw.replace(quote("https://api.twilio.com", safe="").encode(), quote(api.url, safe="").encode())
    return raw


def headers_for(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(PUBLIC_URL + "/webhooks/twilio", body),
    }


@pytest.fixture
def twilio_api() -> Any:
    with ProviderApi() as api:
        api.route(ANY, MESSAGES_PATH, SENT)
        yield api


@pytest.fixture
def twilio_config(make_config: Callable[..., Config], twilio_api: ProviderApi) -> Config:
    return make_config(
        http={"public_url": PUBLIC_URL},
        media={"allow_private_hosts": True},  # the stand-in API listens on loopback
        channels={
            "twilio": {
                "enabled": True,
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "api_base": twilio_api.url,
            }
        },
    )


def replies_sent(api: ProviderApi) -> list[dict[str, str]]:
    return [dict(parse_qsl(call.body.decode())) for call in api.requests if call.path == MESSAGES_PATH]


def test_sms_becomes_a_complaint_and_the_ack_goes_back_through_twilio(
    twilio_config: Config, store: Store, running_client: Callable[[Config], TestClient], twilio_api: ProviderApi
) -> None:
    body = payload("sms_basic.form")
    with running_client(twilio_config) as client:
        response = client.post("/webhooks/twilio", content=body, headers=headers_for(body))
        assert (response.status_code, response.content) == (200, TWIML)
        [row] = stored_inbox(store)  # committed before the answer
        assert (row.channel, row.provider, row.raw) == ("sms", "twilio", body)
        [reply] = eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")

    [record] = complaint_records(store)
    assert record["channel"] == "sms"
    assert record["provider"] == "twilio"
    assert record["external_id"] == "SM5f0e9a1c2b3d4e5f6a7b8c9d0e1f2a3b"
    assert record["body"] == "Jalan berlubang di depan SDN 3 Cibinong, mohon segera diperbaiki"
    assert record["reporter"]["phone"] == "+6281234567890"
    assert replies_sent(twilio_api) == [
        {"To": "+6281234567890", "From": "+14155550123", "Body": ACK.format(record["tracking_id"])}
    ]
    assert reply.provider_message_id == REPLY_SID


def test_whatsapp_message_keeps_profile_name_and_downloads_media(
    twilio_config: Config, store: Store, running_client: Callable[[Config], TestClient], twilio_api: ProviderApi
) -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF sampah di pasar"
    media_path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM7d6c5b4a39281706f5e4d3c2b1a09f8e/Media/"
    twilio_api.route(
        ANY, media_path + "ME1a2b3c4d5e6f708192a3b4c5d6e7f809", Canned(body=jpeg, content_type="image/jpeg")
    )
    body = payload("whatsapp_image.form", twilio_api)
    with running_client(twilio_config) as client:
        assert client.post("/webhooks/twilio", content=body, headers=headers_for(body)).status_code == 200
        eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")
        eventually(lambda: complaint_records(store)[0]["attachments"], "the photo to be attached")

    [record] = complaint_records(store)
    assert (record["channel"], record["provider"]) == ("whatsapp", "twilio")
    assert record["reporter"]["name"] == "Siti Rahayu"
    assert record["reporter"]["phone"] == "+6281398765432"
    digest = hashlib.sha256(jpeg).hexdigest()
    assert record["attachments"] == [
        {
            "filename": "ME1a2b3c4d5e6f708192a3b4c5d6e7f809.jpg",
            "content_type": "image/jpeg",
            "size": len(jpeg),
            "sha256": digest,
        }
    ]
    assert (Path(twilio_config.data_dir) / "attachments" / digest[:2] / digest).read_bytes() == jpeg
    [media_call] = [call for call in twilio_api.requests if call.path.startswith(media_path)]
    assert media_call.headers["authorization"].startswith("Basic ")
    [sent] = replies_sent(twilio_api)
    assert (sent["To"], sent["From"]) == ("whatsapp:+6281398765432", "whatsapp:+14155238886")


def test_forged_signature_stores_nothing(
    twilio_config: Config, store: Store, running_client: Callable[[Config], TestClient]
) -> None:
    body = payload("sms_basic.form")
    with running_client(twilio_config) as client:
        forged = {**headers_for(body), "X-Twilio-Signature": sign(PUBLIC_URL + "/webhooks/twilio", body, "guess")}
        assert client.post("/webhooks/twilio", content=body, headers=forged).status_code == 403
        unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
        assert client.post("/webhooks/twilio", content=body, headers=unsigned).status_code == 403
    assert inbox_count(store) == 0


def test_redelivered_and_concurrent_copies_make_one_complaint_and_each_gets_twiml(
    twilio_config: Config, store: Store, twilio_api: ProviderApi
) -> None:
    body = payload("sms_unicode.form")
    with serve_app(create_app(Gateway(twilio_config, store)), lifespan=True) as base_url:
        answers = post_at_once(base_url, "/webhooks/twilio", body, headers_for(body), 12)
        eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")
        # Twilio's later redelivery of the same MessageSid
        answers += post_at_once(base_url, "/webhooks/twilio", body, headers_for(body), 1)

    assert [(answer.status_code, answer.content) for answer in answers] == [(200, TWIML)] * 13
    assert inbox_count(store) == 1
    [record] = complaint_records(store)
    assert record["body"] == "lampu PJU mati 3 minggu 😡 gelap sekali"
    assert len(stored_replies(store)) == 1
    assert len(replies_sent(twilio_api)) == 1


def test_api_500_keeps_the_reply_for_retry_then_failed_then_replayable(
    twilio_config: Config,
    store: Store,
    running_client: Callable[[Config], TestClient],
    twilio_api: ProviderApi,
    admin_token: str,
) -> None:
    twilio_api.route(ANY, MESSAGES_PATH, Canned(status=500, body=b'{"code": 20500}', content_type="application/json"))
    body = payload("sms_basic.form")
    with running_client(twilio_config) as client:
        assert client.post("/webhooks/twilio", content=body, headers=headers_for(body)).status_code == 200
        [failed] = eventually(lambda: stored_replies(store, status="failed"), "the reply to fail")
        assert failed.attempts == twilio_config.worker.max_attempts == len(replies_sent(twilio_api))
        assert failed.error_type == "ProviderError"
        [record] = complaint_records(store)  # the complaint stands whatever happens to its reply
        listed = client.get("/api/v1/failed", headers=bearer(admin_token)).json()["items"]
        assert f"outbox-{failed.id}" in [item["id"] for item in listed]

        twilio_api.route(ANY, MESSAGES_PATH, SENT)
        replayed = client.post(f"/api/v1/failed/outbox-{failed.id}/replay", headers=bearer(admin_token))
        assert replayed.status_code == 200
        [sent] = eventually(lambda: stored_replies(store, status="done"), "the replayed reply to be sent")

    assert sent.provider_message_id == REPLY_SID
    assert replies_sent(twilio_api)[-1]["Body"] == ACK.format(record["tracking_id"])
    assert len(complaint_records(store)) == 1


def test_status_callback_updates_the_reply_and_makes_no_complaint(
    twilio_config: Config, store: Store, running_client: Callable[[Config], TestClient]
) -> None:
    first = payload("sms_basic.form")
    status = (
        f"SmsSid={REPLY_SID}&SmsStatus=delivered&MessageStatus=delivered&To=%2B6281234567890"
        f"&MessageSid={REPLY_SID}&AccountSid={ACCOUNT_SID}&From=%2B14155550123&ApiVersion=2010-04-01"
    ).encode()
    with running_client(twilio_config) as client:
        client.post("/webhooks/twilio", content=first, headers=headers_for(first))
        eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")
        assert client.post("/webhooks/twilio", content=status, headers=headers_for(status)).status_code == 200
        eventually(
            lambda: stored_replies(store, status="done")[0].delivery_status == "delivered", "the receipt to be applied"
        )
        eventually(lambda: stored_inbox(store)[-1].status == "ignored", "the callback row to be marked ignored")
        [record] = complaint_records(store)
        # The receipt is shown: in the API's single record and on the staff detail page.
        token = create_token(store, "siti", "agent")
        api_record = client.get(f"/api/v1/complaints/{record['tracking_id']}", headers=bearer(token)).json()
        [shown] = api_record["replies"]
        assert (shown["status"], shown["delivery_status"]) == ("done", "delivered")
        assert shown["text"] == ACK.format(record["tracking_id"]) and shown["provider_message_id"] == REPLY_SID
        add_staff(store)
        form = {"username": "siti", "password": PASSWORD, "csrf_token": csrf_of(client.get("/login").text)}
        assert client.post("/login", data=form, follow_redirects=False).status_code == 303
        page = client.get(f"/pengaduan/{record['tracking_id']}").text
        assert "Balasan ke pelapor" in page and 'sampai <span class="muted">(delivered)</span>' in page


def resent_as(body: bytes, sid: str) -> bytes:
    """The same citizen's next message: another MessageSid, same sender."""
    fields = [
        (key, sid if key in ("MessageSid", "SmsSid", "SmsMessageSid") else value)
        for key, value in parse_qsl(body.decode())
    ]
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in fields).encode()


def test_whatsapp_through_twilio_joins_the_open_complaint_and_sms_does_not(
    twilio_config: Config, store: Store, running_client: Callable[[Config], TestClient], twilio_api: ProviderApi
) -> None:
    whatsapp = payload("whatsapp_location.form")
    sms = payload("sms_basic.form")
    bodies = [whatsapp, resent_as(whatsapp, "SM" + "1" * 32), sms, resent_as(sms, "SM" + "2" * 32)]
    with running_client(twilio_config) as client:
        for count, body in enumerate(bodies, start=1):
            assert client.post("/webhooks/twilio", content=body, headers=headers_for(body)).status_code == 200
            eventually(lambda: len(complaint_records(store)) == count, "a complaint")  # noqa: B023 (used at once)
    first, follow_up, text, second_text = complaint_records(store)
    assert (first["channel"], follow_up["channel"]) == ("whatsapp", "whatsapp")
    assert follow_up["parent_tracking_id"] == first["tracking_id"]  # followup_window_minutes (default 30)
    assert (text["channel"], second_text["parent_tracking_id"]) == ("sms", None)  # an SMS number is no chat
