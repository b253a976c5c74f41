"""WhatsApp Cloud API channel: payload table, signature, webhook edge, Graph API calls."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from channels import whatsapp
from channels.base import Reply
from channels.whatsapp import WhatsAppSettings, inbox_items, parse, receipts, sign
from normalizer.errors import AuthError, IgnoredMessage, PayloadError, ProviderError, ProviderRejected
from normalizer.types import Attachment, ChannelMessage, Location
from tests.channels.meta_rig import MemoryInbox, fake_provider_api, make_context, unreachable_url
from tests.support.fakes import SavedFiles
from tests.support.provider_api import Canned, ProviderApi

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "meta"
APP_SECRET = "6b1f0e0c9d2a4e31a5c7"
SITI = {"sender_name": "Siti Aminah", "sender_phone": "+6281234567890", "reply_to": "6281234567890"}


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def settings(api_base: str = "https://graph.facebook.com") -> WhatsAppSettings:
    return WhatsAppSettings(
        enabled=True,
        verify_token="kominfo-verify",
        app_secret=APP_SECRET,
        access_token="EAAG-test-token",
        phone_number_id="106540352242922",
        api_base=api_base,
        api_version="v21.0",
    )


def only_message(name: str) -> ChannelMessage:
    """Parse a one-message payload the way the worker gets it: one inbox row per wamid."""
    raw = payload(name)
    (item,) = inbox_items(raw)
    messages = parse(item.raw, item.meta)
    assert len(messages) == 1
    return messages[0]


# file -> the fields of the ChannelMessage it must become
TABLE: dict[str, dict[str, Any]] = {
    "text.json": {
        **SITI,
        "text": "LAPOR jalan berlubang di Jl. Sudirman depan pasar, sudah 2 minggu belum diperbaiki",
    },
    "image_with_caption.json": {
        **SITI,
        "text": "Sampah menumpuk di TPS Kelurahan Sukajadi",
        "media": [{"id": "1003383421387256", "kind": "image", "mime_type": "image/jpeg", "filename": None}],
    },
    "document.json": {
        **SITI,
        "text": "Surat keberatan atas tagihan PBB",
        "media": [
            {
                "id": "1456282675497120",
                "kind": "document",
                "mime_type": "application/pdf",
                "filename": "surat_keberatan.pdf",
            }
        ],
    },
    "audio_voice_note.json": {
        **SITI,
        "text": "",
        "media": [{"id": "2095434167612318", "kind": "audio", "mime_type": "audio/ogg; codecs=opus", "filename": None}],
    },
    "location.json": {
        **SITI,
        "text": "",
        "location": Location(text="Alun-alun Bandung, Jl. Asia Afrika No.8, Bandung", lat=-6.9218, lon=107.6071),
    },
    "contacts.json": {**SITI, "text": "Kontak: Budi Santoso +6281398765432"},
    "interactive_button_reply.json": {
        **SITI,
        "text": "Jalan rusak",
        "reply_references": ["wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ4RTk2QjE0QzQ2QjA0QkI4RQA="],
    },
    "interactive_list_reply.json": {**SITI, "text": "Dinas Kesehatan"},
    "button.json": {
        **SITI,
        "text": "Cek status",
        "reply_references": ["wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjBGNzA5RTY4MjQ0MUY1NzE0QwA="],
    },
    "sticker.json": {**SITI, "text": "", "unsupported": True},
    "unsupported.json": {**SITI, "text": "", "unsupported": True},
    "username_only_sender.json": {
        "sender_name": "Rina",
        "sender_phone": None,
        "reply_to": "ID.1648738043044942",
        "text": "Pungutan liar di kantor kelurahan",
    },
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_payload_becomes_the_expected_channel_message(name: str) -> None:
    expected = TABLE[name]
    msg = only_message(name)
    assert (msg.channel, msg.provider) == ("whatsapp", "meta")
    assert msg.external_id == json.loads(payload(name))["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert msg.text == expected["text"]
    assert msg.sender_name == expected["sender_name"]
    assert msg.sender_phone == expected["sender_phone"]
    assert msg.reply_to == expected["reply_to"]
    assert msg.location == expected.get("location")
    media = [{key: m[key] for key in ("id", "kind", "mime_type", "filename")} for m in msg.pending_media]
    assert media == expected.get("media", [])
    assert msg.extra.get("reply_references") == expected.get("reply_references")
    assert msg.extra.get("unsupported", False) == expected.get("unsupported", False)


def test_every_payload_file_is_covered_by_a_test() -> None:
    others = {
        "multi_message.json",
        "statuses_only.json",
        "status_failed.json",
        "reaction.json",
        "account_update.json",
        "malformed_truncated.json",
        "malformed_entry_not_a_list.json",
    }
    assert {path.name for path in PAYLOADS.iterdir()} == set(TABLE) | others


def test_multi_message_notification_becomes_one_row_and_one_complaint_per_wamid() -> None:
    raw = payload("multi_message.json")
    items = inbox_items(raw)
    assert [item.external_id for item in items] == [
        "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBBQUFBQUFBQUFBQUFBQUFBQUEA",
        "wamid.HBgNNjI4NTcxMTExMjIyMhUCABIYFjNFQjBCQkJCQkJCQkJCQkJCQkJCQkIA",
    ]
    parsed = [parse(item.raw, item.meta) for item in items]
    assert [(m.sender_name, m.sender_phone, m.text) for [m] in parsed] == [
        ("Siti Aminah", "+6281234567890", "Lampu jalan mati di RT 03 RW 05"),
        ("Andi", "+6285711112222", "Antrean BPJS di puskesmas terlalu lama"),
    ]


def test_multi_message_rows_keep_only_their_own_message_and_sender() -> None:
    raw = payload("multi_message.json")
    items = inbox_items(raw)
    for item, (wa_id, name) in zip(items, [("6281234567890", "Siti Aminah"), ("6285711112222", "Andi")], strict=True):
        value = json.loads(item.raw)["entry"][0]["changes"][0]["value"]
        assert [m["from"] for m in value["messages"]] == [wa_id]
        assert [c["profile"]["name"] for c in value["contacts"]] == [name]
        assert value["metadata"]["phone_number_id"] == "106540352242922"
        # Provenance of the whole notification, without storing it once per message.
        assert item.meta["notification_sha256"] == hashlib.sha256(raw).hexdigest()
        assert item.meta["notification_bytes"] == len(raw)
        assert len(item.raw) < len(raw)


def test_single_message_notification_is_kept_byte_for_byte() -> None:
    raw = payload("text.json")
    [item] = inbox_items(raw)
    assert item.raw == raw
    assert "notification_sha256" not in item.meta


def with_repeated_wamid(name: str) -> bytes:
    notification = json.loads(payload(name))
    value = notification["entry"][0]["changes"][0]["value"]
    value["messages"] = value["messages"] * 2
    return json.dumps(notification).encode()


def test_a_wamid_twice_in_one_notification_is_one_row_and_one_message() -> None:
    raw = with_repeated_wamid("text.json")
    [item] = inbox_items(raw)
    assert item.external_id == json.loads(raw)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert len(parse(item.raw, item.meta)) == 1
    # A row built from the whole notification (no wamid in meta) dedups too.
    assert [m.part for m in parse(raw, {})] == [0]


def test_a_repeated_wamid_next_to_another_message_still_makes_two_rows() -> None:
    notification = json.loads(payload("multi_message.json"))
    value = notification["entry"][0]["changes"][0]["value"]
    value["messages"] = [value["messages"][0], value["messages"][1], value["messages"][0]]
    items = inbox_items(json.dumps(notification).encode())
    assert len(items) == 2
    assert [len(parse(item.raw, item.meta)) for item in items] == [1, 1]


def test_row_without_wamid_meta_parses_every_message_numbered_by_part() -> None:
    messages = parse(payload("multi_message.json"), {})
    assert [(m.part, m.sender_name) for m in messages] == [(0, "Siti Aminah"), (1, "Andi")]


def test_statuses_only_notification_is_never_a_complaint_and_updates_receipts() -> None:
    raw = payload("statuses_only.json")
    items = inbox_items(raw)
    sent_id = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ4RTk2QjE0QzQ2QjA0QkI4RQA="
    assert [item.external_id for item in items] == [f"status:{sent_id}:delivered", f"status:{sent_id}:read"]
    for item in items:
        with pytest.raises(IgnoredMessage):
            parse(item.raw, item.meta)
    assert [(r.provider_message_id, r.status) for r in receipts(raw, items[1].meta)] == [(sent_id, "read")]
    assert [r.status for r in receipts(raw, {})] == ["delivered", "read"]


def test_message_rows_report_no_receipts_of_the_statuses_batched_with_them() -> None:
    notification = json.loads(payload("text.json"))
    statuses = json.loads(payload("statuses_only.json"))["entry"][0]["changes"][0]["value"]["statuses"]
    notification["entry"][0]["changes"][0]["value"]["statuses"] = statuses
    raw = json.dumps(notification).encode()
    items = inbox_items(raw)
    assert [item.external_id.split(":")[0] for item in items] == [
        "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDMEQ2RkQ0QjQ4QjA3MTEwQUEA",
        "status",
        "status",
    ]
    assert receipts(raw, items[0].meta) == []
    assert [len(receipts(raw, item.meta)) for item in items[1:]] == [1, 1]


def test_failed_status_carries_the_providers_error() -> None:
    (receipt,) = receipts(payload("status_failed.json"), {})
    assert (receipt.status, receipt.error) == ("failed", "Re-engagement message")


def test_reaction_is_ignored_not_answered() -> None:
    (item,) = inbox_items(payload("reaction.json"))
    with pytest.raises(IgnoredMessage):
        parse(item.raw, item.meta)


def test_notification_of_another_field_is_kept_as_an_ignored_row() -> None:
    (item,) = inbox_items(payload("account_update.json"))
    assert item.external_id.startswith("notification:")
    assert item.ignored_reason


@pytest.mark.parametrize(
    ("name", "problem"),
    [("malformed_truncated.json", "not JSON"), ("malformed_entry_not_a_list.json", "bad entry")],
)
def test_malformed_notification_is_a_payload_error_naming_the_problem(name: str, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        inbox_items(payload(name))
    with pytest.raises(PayloadError, match=problem):
        parse(payload(name), {"wamid": "wamid.x"})


def test_row_whose_wamid_is_missing_from_the_body_fails_instead_of_guessing() -> None:
    with pytest.raises(PayloadError, match="does not contain"):
        parse(payload("text.json"), {"wamid": "wamid.other"})


def test_external_id_matches_the_key_the_edge_stored() -> None:
    for name in ("multi_message.json", "statuses_only.json", "account_update.json"):
        for item in inbox_items(payload(name)):
            assert whatsapp.external_id(item.raw, item.meta) == item.external_id


# --- signature -------------------------------------------------------------


def test_valid_signature_passes() -> None:
    body = payload("text.json")
    whatsapp.verify(body, {"X-Hub-Signature-256": sign(body, APP_SECRET)}, APP_SECRET, "whatsapp")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Hub-Signature-256": sign(b"{}", "another-apps-secret")}, "does not match"),
        ({}, "missing"),
        ({"X-Hub-Signature-256": "sha256="}, "does not match"),
    ],
    ids=["forged", "missing", "empty"],
)
def test_bad_signature_is_an_auth_error(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        whatsapp.verify(payload("text.json"), headers, APP_SECRET, "whatsapp")


def test_body_changed_after_signing_is_an_auth_error() -> None:
    body = payload("text.json")
    signature = sign(body, APP_SECRET)
    tampered = body.replace(b"Sudirman", b"Thamrin")
    with pytest.raises(AuthError):
        whatsapp.verify(tampered, {"X-Hub-Signature-256": signature}, APP_SECRET, "whatsapp")


# --- webhook edge ----------------------------------------------------------


async def call_webhook(
    inbox: MemoryInbox, method: str, body: bytes = b"", headers: dict[str, str] | None = None, query: str = ""
) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        app = FastAPI()
        app.include_router(whatsapp.router(settings(), make_context(http, inbox)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, "/webhooks/whatsapp" + query, content=body, headers=headers)


def post_signed(inbox: MemoryInbox, body: bytes, secret: str = APP_SECRET) -> httpx.Response:
    headers = {"X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"}
    return asyncio.run(call_webhook(inbox, "POST", body, headers))


def test_subscription_handshake_echoes_the_challenge_as_plain_text() -> None:
    query = "?hub.mode=subscribe&hub.verify_token=kominfo-verify&hub.challenge=1158201444"
    response = asyncio.run(call_webhook(MemoryInbox(), "GET", query=query))
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        "?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1",
        "?hub.mode=unsubscribe&hub.verify_token=kominfo-verify&hub.challenge=1",
        "?hub.challenge=1",
    ],
    ids=["wrong-token", "wrong-mode", "no-token"],
)
def test_subscription_handshake_with_a_wrong_token_is_refused(query: str) -> None:
    response = asyncio.run(call_webhook(MemoryInbox(), "GET", query=query))
    assert response.status_code == 403
    assert "1" not in response.text


def test_signed_notification_is_stored_raw_and_answered_200() -> None:
    inbox = MemoryInbox()
    body = payload("image_with_caption.json")
    response = post_signed(inbox, body)
    assert response.status_code == 200
    (item,) = inbox.items.values()
    assert item.raw == body
    assert item.external_id == "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBGMjE0QUE5RjQ1MkE3QjFDRDIA"


@pytest.mark.parametrize("secret", ["another-apps-secret", None], ids=["forged", "missing"])
def test_unsigned_or_forged_notification_is_refused_and_nothing_stored(secret: str | None) -> None:
    inbox = MemoryInbox()
    body = payload("text.json")
    headers = {"X-Hub-Signature-256": sign(body, secret)} if secret else {}
    response = asyncio.run(call_webhook(inbox, "POST", body, headers))
    assert response.status_code == 403
    assert inbox.items == {}


def test_notification_changed_after_signing_is_refused_and_nothing_stored() -> None:
    inbox = MemoryInbox()
    body = payload("text.json")
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
    response = asyncio.run(call_webhook(inbox, "POST", body.replace(b"pasar", b"pabrik"), headers))
    assert response.status_code == 403
    assert inbox.items == {}


def test_signed_malformed_json_is_a_400_naming_the_problem_and_nothing_stored() -> None:
    inbox = MemoryInbox()
    response = post_signed(inbox, payload("malformed_truncated.json"))
    assert response.status_code == 400
    assert "not JSON" in response.text
    assert inbox.items == {}


def test_signed_json_nested_ten_thousand_deep_is_a_400_naming_it_not_a_crash() -> None:
    inbox = MemoryInbox()
    response = post_signed(inbox, b'{"object": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    assert response.status_code == 400
    assert "recursion" in response.text
    assert inbox.items == {}


def test_retry_batched_differently_stores_each_wamid_once() -> None:
    inbox = MemoryInbox()
    both = payload("multi_message.json")
    notification = json.loads(both)
    value = notification["entry"][0]["changes"][0]["value"]
    value["messages"] = value["messages"][1:]
    second_alone = json.dumps(notification).encode()
    assert post_signed(inbox, both).status_code == 200
    assert post_signed(inbox, second_alone).status_code == 200
    assert post_signed(inbox, both).status_code == 200
    assert len(inbox.items) == 2


def test_store_failure_answers_5xx_so_meta_retries() -> None:
    response = post_signed(MemoryInbox(fail=True), payload("text.json"))
    assert response.status_code >= 500


# --- Graph API: send and media -----------------------------------------------


def reply(text: str = "Laporan Anda diterima: LPR-7K3Q9X", to: str = "6281234567890") -> Reply:
    return Reply(
        channel="whatsapp",
        provider="meta",
        to=to,
        text=text,
        idempotency_key="LPR-7K3Q9X:ack",
        tracking_id="LPR-7K3Q9X",
        extra={"wamid": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDMEQ2RkQ0QjQ4QjA3MTEwQUEA"},
    )


MESSAGES_PATH = "/v21.0/106540352242922/messages"
SENT = Canned.json(
    {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "6281234567890", "wa_id": "6281234567890"}],
        "messages": [{"id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ4RTk2QjE0QzQ2QjA0QkI4RQA="}],
    }
)


async def send_via(api: ProviderApi, message: Reply) -> Any:
    async with httpx.AsyncClient() as client:
        return await whatsapp.send(message, settings(api.url), client)


def test_send_posts_the_text_with_the_bearer_token_and_returns_the_wamid() -> None:
    with fake_provider_api() as api:
        api.route("POST", MESSAGES_PATH, SENT)
        sent = asyncio.run(send_via(api, reply()))
        (request,) = api.seen("POST", MESSAGES_PATH)
    assert sent.provider_message_id == "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ4RTk2QjE0QzQ2QjA0QkI4RQA="
    assert request.headers["authorization"] == "Bearer EAAG-test-token"
    body = request.json()
    assert body["messaging_product"] == "whatsapp"
    assert (body["to"], body["type"], body["text"]["body"]) == (
        "6281234567890",
        "text",
        "Laporan Anda diterima: LPR-7K3Q9X",
    )


def test_send_to_a_user_without_phone_uses_the_business_scoped_id() -> None:
    with fake_provider_api() as api:
        api.route("POST", MESSAGES_PATH, SENT)
        asyncio.run(send_via(api, reply(to="ID.1648738043044942")))
        (request,) = api.seen("POST", MESSAGES_PATH)
    assert request.json()["recipient"] == "ID.1648738043044942"
    assert "to" not in request.json()


def test_graph_api_500_is_a_retryable_provider_error() -> None:
    with fake_provider_api() as api:
        api.route("POST", MESSAGES_PATH, Canned.json({"error": {"message": "Service unavailable"}}, status=500))
        with pytest.raises(ProviderError) as caught:
            asyncio.run(send_via(api, reply()))
    assert caught.value.retryable


def test_graph_api_400_is_a_final_rejection() -> None:
    with fake_provider_api() as api:
        error = {"error": {"message": "(#131047) Re-engagement message", "code": 131047}}
        api.route("POST", MESSAGES_PATH, Canned.json(error, status=400))
        with pytest.raises(ProviderRejected, match="Re-engagement") as caught:
            asyncio.run(send_via(api, reply()))
    assert not caught.value.retryable


def test_unreachable_graph_api_is_a_retryable_provider_error() -> None:
    async def attempt() -> None:
        async with httpx.AsyncClient() as client:
            await whatsapp.send(reply(), settings(unreachable_url()), client)

    with pytest.raises(ProviderError):
        asyncio.run(attempt())


async def fetch_via(api: ProviderApi, msg: ChannelMessage, files: SavedFiles) -> list[Attachment]:
    async with httpx.AsyncClient() as http:
        context = make_context(http, files=files)
        return [await whatsapp.fetch_media(media, settings(api.url), context) for media in msg.pending_media]


def media_routes(api: ProviderApi, media_id: str, data: bytes, mime: str) -> None:
    lookup = {"url": f"{api.url}/whatsapp_business/attachments/?mid={media_id}&ext=1&hash=x", "mime_type": mime}
    api.route("GET", f"/v21.0/{media_id}", Canned.json({**lookup, "id": media_id, "file_size": len(data)}))
    api.route("GET", "/whatsapp_business/attachments/", Canned(body=data, content_type=mime))


def test_fetch_media_downloads_the_photo_with_the_bearer_token_into_an_attachment() -> None:
    photo = b"\xff\xd8\xff\xe0 a JPEG of rubbish at the TPS"
    files = SavedFiles()
    with fake_provider_api() as api:
        media_routes(api, "1003383421387256", photo, "image/jpeg")
        (attachment,) = asyncio.run(fetch_via(api, only_message("image_with_caption.json"), files))
        downloads = api.seen("GET", "/whatsapp_business/attachments/")
    assert files.blobs[attachment.sha256] == photo
    assert (attachment.content_type, attachment.size) == ("image/jpeg", len(photo))
    assert downloads[0].headers["authorization"] == "Bearer EAAG-test-token"


def test_fetch_media_keeps_the_documents_filename() -> None:
    with fake_provider_api() as api:
        media_routes(api, "1456282675497120", b"%PDF-1.7", "application/pdf")
        attachments = asyncio.run(fetch_via(api, only_message("document.json"), SavedFiles()))
    assert [a.filename for a in attachments] == ["surat_keberatan.pdf"]


def test_media_url_off_metas_hosts_gets_no_token() -> None:
    with fake_provider_api() as api, fake_provider_api() as elsewhere:
        lookup = {"url": elsewhere.url.replace("127.0.0.1", "localhost") + "/steal", "mime_type": "image/jpeg"}
        api.route("GET", "/v21.0/1003383421387256", Canned.json(lookup))
        elsewhere.route("GET", "/steal", Canned(body=b"x", content_type="image/jpeg"))
        asyncio.run(fetch_via(api, only_message("image_with_caption.json"), SavedFiles()))
        [download] = elsewhere.seen("GET", "/steal")
    assert "authorization" not in download.headers


def test_media_meta_no_longer_has_fails_for_good() -> None:
    with fake_provider_api() as api:
        api.route("GET", "/v21.0/1003383421387256", Canned.json({"error": {"message": "not found"}}, status=404))
        with pytest.raises(ProviderRejected):
            asyncio.run(fetch_via(api, only_message("image_with_caption.json"), SavedFiles()))


def test_media_during_a_graph_outage_raises_retryable() -> None:
    with fake_provider_api() as api:
        api.route("GET", "/v21.0/1003383421387256", Canned.json({}, status=503))
        with pytest.raises(ProviderError):
            asyncio.run(fetch_via(api, only_message("image_with_caption.json"), SavedFiles()))


def test_a_reply_outside_the_24_hour_window_is_not_sent() -> None:
    old = reply()
    stale = Reply(**{**old.__dict__, "extra": {**old.extra, "received_ms": 1_000_000_000_000}})  # 2001
    with fake_provider_api() as api:
        api.route("POST", MESSAGES_PATH, SENT)
        with pytest.raises(ProviderRejected, match="24-hour window"):
            asyncio.run(send_via(api, stale))
        assert api.seen("POST", MESSAGES_PATH) == []


# --- settings --------------------------------------------------------------


def test_enabled_channel_without_app_secret_names_the_key() -> None:
    with pytest.raises(ValidationError, match=r"channels\.whatsapp\.app_secret is empty"):
        WhatsAppSettings(enabled=True, verify_token="v", access_token="t", phone_number_id="1")


def test_unknown_settings_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        WhatsAppSettings.model_validate({"enabled": False, "app_secrets": "typo"})


def test_defaults_match_the_config_contract() -> None:
    defaults = WhatsAppSettings()
    assert (defaults.api_base, defaults.followup_window_minutes) == ("https://graph.facebook.com", 30)
