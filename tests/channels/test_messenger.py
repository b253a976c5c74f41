"""Messenger and Instagram messages (Meta): payload tables, signature, webhook edge, Send API, media."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from channels import instagram, messenger
from channels.base import Reply
from channels.media import MediaLimits, MediaRefused
from channels.meta.signature import sign
from channels.meta.window import MESSAGE_TIME_KEY
from gateway.config import parse_config
from normalizer.errors import IgnoredMessage, PayloadError, ProviderError, ProviderRejected
from normalizer.types import ChannelMessage, Location
from tests.channels.meta_rig import MemoryInbox, fake_provider_api, make_context
from tests.support.fakes import SavedFiles
from tests.support.provider_api import Canned, ProviderApi

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
APP_SECRET = "9f8e7d6c5b4a39281706"
PSID, IGSID = "6543219876543210", "1234567890123456"
PRODUCTS = {"messenger": messenger, "instagram": instagram}


def payload(product: str, name: str) -> bytes:
    return (PAYLOADS / product / name).read_bytes()


def settings(module: ModuleType, api_base: str = "https://graph.facebook.com") -> Any:
    settings_type = messenger.MessengerSettings if module is messenger else instagram.InstagramSettings
    return settings_type(
        enabled=True,
        verify_token="kominfo-verify",
        app_secret=APP_SECRET,
        access_token="EAAG-page-token",
        api_base=api_base,
    )


def messages_of(product: str, name: str) -> list[ChannelMessage]:
    """Parse a payload the way the worker gets it: one inbox row per event."""
    module = PRODUCTS[product]
    found: list[ChannelMessage] = []
    for item in module.PRODUCT.inbox_items(payload(product, name)):
        if item.ignored_reason is None:
            with contextlib.suppress(IgnoredMessage):  # receipts and unsent messages
                found.extend(module.PRODUCT.parse(item.raw, item.meta))
    return found


# (product, file) -> the fields of the one ChannelMessage it must become
TABLE: dict[tuple[str, str], dict[str, Any]] = {
    ("messenger", "text.json"): {
        "text": "Lapor, jalan di depan Pasar Minggu berlubang besar, sudah dua motor jatuh",
        "reply_to": PSID,
    },
    ("messenger", "image.json"): {"text": "", "media": ["image"], "reply_to": PSID},
    ("messenger", "quick_reply.json"): {"text": "Jalan rusak", "choice_id": "KATEGORI_JALAN"},
    ("messenger", "postback.json"): {"text": "Cek status laporan", "choice_id": "CEK_STATUS"},
    ("messenger", "reply_to.json"): {
        "text": "Sampai sekarang belum ada petugas yang datang",
        "reply_references": ["m_OurAck0001ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"],
    },
    ("messenger", "sticker.json"): {"text": "", "unsupported": True},
    ("messenger", "location.json"): {"text": "", "location": Location(text="Pasar Minggu", lat=-6.2607, lon=106.7816)},
    ("messenger", "fallback_link.json"): {
        "text": "Ini beritanya\nBanjir di Kemang https://news.example.id/banjir-kemang"
    },
    ("instagram", "text.json"): {
        "text": "Min, trotoar di Jl. Braga rusak parah, bahaya buat pejalan kaki",
        "reply_to": IGSID,
    },
    ("instagram", "image.json"): {"text": "", "media": ["image"], "reply_to": IGSID},
    ("instagram", "story_mention.json"): {"text": "", "media": ["story_mention"]},
    ("instagram", "story_reply.json"): {"text": "Ini di Kelurahan Citarum, kapan diperbaiki?"},
    ("instagram", "share.json"): {"text": "https://www.instagram.com/p/C0aBcDeFgHi/"},
    ("instagram", "quick_reply.json"): {"text": "Jalan rusak", "choice_id": "KATEGORI_JALAN"},
    ("instagram", "postback.json"): {"text": "Cek status laporan", "choice_id": "CEK_STATUS"},
    ("instagram", "unsupported.json"): {"text": "", "unsupported": True},
}
# Not complaints: our own messages echoed back, receipts, a message the person unsent.
NOT_COMPLAINTS = [
    ("messenger", "echo.json"),
    ("messenger", "delivery.json"),
    ("messenger", "read.json"),
    ("instagram", "echo.json"),
    ("instagram", "read.json"),
    ("instagram", "deleted.json"),
]
MALFORMED = {
    ("messenger", "malformed_truncated.json"): "not JSON",
    ("messenger", "wrong_object.json"): "for object 'instagram', not 'page'",
}


@pytest.mark.parametrize(("product", "name"), sorted(TABLE), ids=["/".join(key) for key in sorted(TABLE)])
def test_payload_becomes_the_expected_channel_message(product: str, name: str) -> None:
    expected = TABLE[(product, name)]
    [msg] = messages_of(product, name)
    event = json.loads(payload(product, name))["entry"][0]["messaging"][0]
    assert (msg.channel, msg.provider) == (product, product)
    assert msg.external_id == (event.get("message") or event.get("postback"))["mid"]
    assert msg.text == expected["text"]
    assert msg.reply_to == expected.get("reply_to", event["sender"]["id"])
    assert msg.location == expected.get("location")
    assert [m["kind"] for m in msg.pending_media] == expected.get("media", [])
    assert msg.extra.get("choice_id") == expected.get("choice_id")
    assert msg.extra.get("reply_references") == expected.get("reply_references")
    assert msg.extra.get("unsupported", False) == expected.get("unsupported", False)
    assert msg.extra[f"{product}_user_id"] == event["sender"]["id"]
    assert (msg.sender_phone, msg.sender_email) == (None, None)


@pytest.mark.parametrize(("product", "name"), NOT_COMPLAINTS, ids=["/".join(key) for key in NOT_COMPLAINTS])
def test_echoes_receipts_and_unsent_messages_are_no_complaint(product: str, name: str) -> None:
    assert messages_of(product, name) == []


@pytest.mark.parametrize(("product", "name"), sorted(MALFORMED), ids=["/".join(key) for key in sorted(MALFORMED)])
def test_malformed_notification_is_a_payload_error_naming_the_problem(product: str, name: str) -> None:
    with pytest.raises(PayloadError, match=MALFORMED[(product, name)]):
        PRODUCTS[product].PRODUCT.inbox_items(payload(product, name))


def test_every_payload_file_is_covered_by_a_test() -> None:
    covered = set(TABLE) | set(NOT_COMPLAINTS) | set(MALFORMED) | {("messenger", "two_senders_and_a_repeat.json")}
    on_disk = {(product, path.name) for product in PRODUCTS for path in (PAYLOADS / product).iterdir()}
    assert on_disk == covered


def test_echoes_are_kept_as_ignored_rows() -> None:
    [item] = messenger.PRODUCT.inbox_items(payload("messenger", "echo.json"))
    assert item.external_id.startswith("echo:m_EcHo")
    assert item.ignored_reason == "messenger echo of a message the page sent"


def test_delivery_receipt_updates_the_reply_it_names() -> None:
    [item] = messenger.PRODUCT.inbox_items(payload("messenger", "delivery.json"))
    [receipt] = messenger.PRODUCT.receipts(item.raw, item.meta)
    mid = "m_OurAck0001ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
    assert (receipt.provider_message_id, receipt.status) == (mid, "delivered")
    [item] = instagram.PRODUCT.inbox_items(payload("instagram", "read.json"))
    [receipt] = instagram.PRODUCT.receipts(item.raw, item.meta)
    assert receipt.status == "read"


def test_one_row_per_mid_each_keeping_only_its_own_event() -> None:
    raw = payload("messenger", "two_senders_and_a_repeat.json")
    items = messenger.PRODUCT.inbox_items(raw)
    assert [item.external_id for item in items] == [
        "m_BaTcH0001iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii",
        "m_BaTcH0002jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj",
    ]
    for item, sender in zip(items, [PSID, "7012345678901234"], strict=True):
        [event] = json.loads(item.raw)["entry"][0]["messaging"]
        assert event["sender"]["id"] == sender
        assert item.meta["notification_sha256"] == hashlib.sha256(raw).hexdigest()
        [message] = messenger.PRODUCT.parse(item.raw, item.meta)
        assert messenger.PRODUCT.external_id(item.raw, item.meta) == item.external_id == message.external_id
    # A row built by hand from the whole notification still makes one message per mid.
    assert [m.part for m in messenger.PRODUCT.parse(raw, {})] == [0, 1]


def test_single_event_notification_is_kept_byte_for_byte_with_its_receipt_time() -> None:
    raw = payload("instagram", "text.json")
    [item] = instagram.PRODUCT.inbox_items(raw)
    assert item.raw == raw
    assert isinstance(item.meta[MESSAGE_TIME_KEY], int)
    [message] = instagram.PRODUCT.parse(item.raw, item.meta)
    assert message.extra[MESSAGE_TIME_KEY] == item.meta[MESSAGE_TIME_KEY]


# --- webhook edge ----------------------------------------------------------


async def call(product: str, inbox: MemoryInbox, method: str, body: bytes = b"", **kwargs: Any) -> httpx.Response:
    module = PRODUCTS[product]
    async with httpx.AsyncClient() as http:
        app = FastAPI()
        assert module.ADAPTER.router is not None
        app.include_router(module.ADAPTER.router(settings(module), make_context(http, inbox=inbox)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, module.WEBHOOK_PATH, content=body, **kwargs)


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"}


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_subscription_handshake_echoes_the_challenge_only_for_our_token(product: str) -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "kominfo-verify", "hub.challenge": "1158201444"}
    answer = asyncio.run(call(product, MemoryInbox(), "GET", params=good))
    assert (answer.status_code, answer.text) == (200, "1158201444")
    wrong = {**good, "hub.verify_token": "guess"}
    assert asyncio.run(call(product, MemoryInbox(), "GET", params=wrong)).status_code == 403


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_signed_notification_is_stored_and_answered_200(product: str) -> None:
    inbox = MemoryInbox()
    body = payload(product, "text.json")
    answer = asyncio.run(call(product, inbox, "POST", body, headers=signed(body)))
    assert answer.status_code == 200
    [item] = inbox.items.values()
    assert (item.channel, item.provider, item.raw) == (product, product, body)
    assert "X-Hub-Signature-256" not in item.headers  # a signature is no provenance worth keeping


@pytest.mark.parametrize("product", sorted(PRODUCTS))
@pytest.mark.parametrize(
    "how", ["forged", "missing", "altered", "empty"], ids=["forged", "missing", "altered", "empty"]
)
def test_unsigned_forged_or_altered_notification_is_refused_and_nothing_stored(product: str, how: str) -> None:
    inbox = MemoryInbox()
    body = payload(product, "text.json")
    headers = {
        "forged": signed(body, "another-apps-secret"),
        "missing": {"Content-Type": "application/json"},
        "altered": signed(body),
        "empty": {"X-Hub-Signature-256": "sha256="},
    }[how]
    sent = body.replace(b" di ", b" ke ") if how == "altered" else body
    assert how != "altered" or sent != body
    answer = asyncio.run(call(product, inbox, "POST", sent, headers=headers))
    assert answer.status_code == 403
    assert inbox.items == {}


def test_redelivery_and_a_differently_batched_retry_store_each_mid_once() -> None:
    inbox = MemoryInbox()
    both = payload("messenger", "two_senders_and_a_repeat.json")
    notification = json.loads(both)
    notification["entry"][0]["messaging"] = notification["entry"][0]["messaging"][1:2]
    second_alone = json.dumps(notification).encode()
    for body in (both, second_alone, both):
        assert asyncio.run(call("messenger", inbox, "POST", body, headers=signed(body))).status_code == 200
    assert len(inbox.items) == 2


def test_signed_malformed_notification_is_a_400_naming_the_problem() -> None:
    inbox = MemoryInbox()
    body = payload("messenger", "wrong_object.json")
    answer = asyncio.run(call("messenger", inbox, "POST", body, headers=signed(body)))
    assert (answer.status_code, inbox.items) == (400, {})
    assert "not 'page'" in answer.text


@pytest.mark.parametrize("depth", [40, 10_000])
def test_signed_json_nested_absurdly_deep_is_a_400_not_a_crash(depth: int) -> None:
    inbox = MemoryInbox()
    body = b'{"object": "page", "entry": ' + b"[" * depth + b"]" * depth + b"}"
    answer = asyncio.run(call("messenger", inbox, "POST", body, headers=signed(body)))
    assert (answer.status_code, inbox.items) == (400, {})


def test_store_failure_answers_5xx_so_meta_retries() -> None:
    body = payload("instagram", "text.json")
    answer = asyncio.run(call("instagram", MemoryInbox(fail=True), "POST", body, headers=signed(body)))
    assert answer.status_code == 503


# --- Send API --------------------------------------------------------------

SEND_PATH = "/v21.0/me/messages"


def reply(product: str, **extra: Any) -> Reply:
    return Reply(
        channel=product,
        provider=product,
        to=PSID,
        text="Laporan Anda diterima. No. LPR-7K3Q9X",
        idempotency_key="reply:1:0",
        tracking_id="LPR-7K3Q9X",
        extra=extra,
    )


async def send_via(api: ProviderApi, product: str, message: Reply) -> Any:
    module = PRODUCTS[product]
    async with httpx.AsyncClient() as client:
        return await module.ADAPTER.send(message, settings(module, api.url), client)


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_send_posts_a_response_to_me_messages_with_the_page_token(product: str) -> None:
    with fake_provider_api() as api:
        api.route("POST", SEND_PATH, Canned.json({"recipient_id": PSID, "message_id": "m_OurAck0001"}))
        sent = asyncio.run(send_via(api, product, reply(product)))
        [request] = api.seen("POST", SEND_PATH)
    assert sent.provider_message_id == "m_OurAck0001"
    assert request.headers["authorization"] == "Bearer EAAG-page-token"
    assert request.json() == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Laporan Anda diterima. No. LPR-7K3Q9X"},
    }


@pytest.mark.parametrize(("status", "error"), [(500, ProviderError), (429, ProviderError), (400, ProviderRejected)])
def test_send_api_failures_map_onto_retry_or_give_up(status: int, error: type[Exception]) -> None:
    with fake_provider_api() as api:
        failure = {"error": {"message": "(#10) outside of allowed window", "code": 10, "error_subcode": 2018278}}
        api.route("POST", SEND_PATH, Canned.json(failure, status=status))
        with pytest.raises(error, match="code 10/2018278"):
            asyncio.run(send_via(api, "messenger", reply("messenger")))


def test_a_reply_outside_the_24_hour_window_is_not_sent() -> None:
    stale = reply("instagram", **{MESSAGE_TIME_KEY: 1_000_000_000_000})
    with fake_provider_api() as api:
        with pytest.raises(ProviderRejected, match="24-hour window"):
            asyncio.run(send_via(api, "instagram", stale))
        assert api.seen("POST", SEND_PATH) == []


# --- media -----------------------------------------------------------------


def media_of(product: str, name: str, cdn_url: str) -> dict[str, Any]:
    [msg] = messages_of(product, name)
    [media] = msg.pending_media
    return {**media, "url": cdn_url + "/" + media["url"].split("/", 3)[3]}


async def fetch(product: str, media: dict[str, Any], files: SavedFiles, limits: MediaLimits | None = None) -> Any:
    module = PRODUCTS[product]
    async with httpx.AsyncClient() as http:
        return await module.ADAPTER.fetch_media(media, settings(module), make_context(http, files=files, media=limits))


@pytest.mark.parametrize(("product", "name"), [("messenger", "image.json"), ("instagram", "story_mention.json")])
def test_attachment_url_is_downloaded_without_our_token(product: str, name: str) -> None:
    photo = b"\xff\xd8\xff\xe0 trotoar rusak"
    files = SavedFiles()
    with ProviderApi(default=Canned(body=photo, content_type="image/jpeg")) as cdn:
        attachment = asyncio.run(fetch(product, media_of(product, name, cdn.url), files))
        [download] = cdn.requests
    assert files.blobs[attachment.sha256] == photo
    assert (attachment.content_type, attachment.size) == ("image/jpeg", len(photo))
    assert "authorization" not in download.headers


def test_an_attachment_url_on_a_private_address_is_refused_in_production() -> None:
    with ProviderApi(default=Canned(body=b"secret")) as cdn:
        media = media_of("messenger", "image.json", cdn.url)
        with pytest.raises(MediaRefused):
            asyncio.run(fetch("messenger", media, SavedFiles(), MediaLimits()))
        assert cdn.requests == []


# --- settings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "env"), [("messenger", "MESSENGER_APP_SECRET"), ("instagram", "INSTAGRAM_APP_SECRET")]
)
def test_enabled_channel_without_app_secret_names_the_key(product: str, env: str) -> None:
    module = PRODUCTS[product]
    settings_type = module.ADAPTER.settings
    with pytest.raises(ValidationError, match=rf"channels\.{product}\.app_secret is empty — set {env}"):
        settings_type(enabled=True, verify_token="v", access_token="t")


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_settings_are_config_keys_with_the_meta_defaults(product: str) -> None:
    channel = parse_config({"channels": {product: {"enabled": False}}}).channel(product)
    assert (channel.api_base, channel.api_version) == ("https://graph.facebook.com", "v21.0")
    with pytest.raises(Exception, match=rf"channels\.{product}\.page_token"):
        parse_config({"channels": {product: {"page_token": "typo"}}})
