"""Twilio: payload table, webhook signature (incl. behind a proxy), media download, replies via the REST API."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from twilio.request_validator import RequestValidator

from channels import twilio
from channels.base import Receipt, Reply
from normalizer.errors import IgnoredMessage, ProviderError, ProviderRejected
from normalizer.types import Location
from tests.channels.sms_http_support import PAYLOADS, MemoryInbox, app_with, make_context, run
from tests.support.fakes import SavedFiles
from tests.support.provider_api import ANY, Canned, ProviderApi
from tests.support.server import free_port

ACCOUNT_SID = "AC3f1b2c4d5e6f708192a3b4c5d6e7f801"
AUTH_TOKEN = "12345678901234567890123456789012"
PUBLIC_URL = "https://lapor.bogorkab.go.id"
MEDIA_PREFIX = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/"
WA_IMAGE_SID = "MM7d6c5b4a39281706f5e4d3c2b1a09f8e"
WA_ALBUM_SID = "MM11223344556677889900aabbccddeeff"


def payload(name: str) -> bytes:
    return (PAYLOADS / "twilio" / name).read_bytes()


def settings(**overrides: Any) -> twilio.TwilioSettings:
    values: dict[str, Any] = {"enabled": True, "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    return twilio.TwilioSettings(**(values | overrides))


def sign(url: str, body: bytes, token: str = AUTH_TOKEN) -> str:
    """What Twilio puts in X-Twilio-Signature for this URL and form body."""
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    return str(RequestValidator(token).compute_signature(url, params))


# file in, ChannelMessage fields out (or the error parse must raise)
CASES: list[tuple[str, dict[str, Any] | type[Exception]]] = [
    (
        "sms_basic.form",
        {
            "channel": "sms",
            "provider": "twilio",
            "external_id": "SM5f0e9a1c2b3d4e5f6a7b8c9d0e1f2a3b",
            "text": "LAPOR Jalan berlubang di depan SDN 3 Cibinong, mohon segera diperbaiki",
            "sender_phone": "+6281234567890",
            "sender_name": None,
            "reply_to": "+6281234567890",
            "extra": {"our_number": "+14155550123"},
        },
    ),
    (
        "sms_unicode.form",
        {
            "channel": "sms",
            "external_id": "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "text": "lapor: lampu PJU mati 3 minggu 😡 gelap sekali",
            "sender_phone": "+6285712345678",
            "reply_to": "+6285712345678",
            "extra": {"our_number": "+628119991708"},
        },
    ),
    (
        "whatsapp_image.form",
        {
            "channel": "whatsapp",
            "provider": "twilio",
            "external_id": "MM7d6c5b4a39281706f5e4d3c2b1a09f8e",
            "text": "Sampah menumpuk di pasar Cikini sudah seminggu",
            "sender_name": "Siti Rahayu",
            "sender_phone": "+6281398765432",
            "reply_to": "whatsapp:+6281398765432",
            "attachments": (),
            "extra": {"our_number": "whatsapp:+14155238886"},
            "pending_media": (
                {
                    "url": MEDIA_PREFIX + "MM7d6c5b4a39281706f5e4d3c2b1a09f8e/Media/ME1a2b3c4d5e6f708192a3b4c5d6e7f809",
                    "content_type": "image/jpeg",
                },
            ),
        },
    ),
    (
        "whatsapp_two_media_no_text.form",
        {
            "channel": "whatsapp",
            "text": "",
            "sender_name": "Andi",
            "reply_to": "whatsapp:+6287711122233",
            "extra": {"our_number": "whatsapp:+14155238886"},
            "pending_media": (
                {
                    "url": MEDIA_PREFIX + "MM11223344556677889900aabbccddeeff/Media/ME00000000000000000000000000000001",
                    "content_type": "image/png",
                },
                {
                    "url": MEDIA_PREFIX + "MM11223344556677889900aabbccddeeff/Media/ME00000000000000000000000000000002",
                    "content_type": "application/pdf",
                },
            ),
        },
    ),
    (
        "whatsapp_location.form",
        {
            "channel": "whatsapp",
            "text": "",
            "sender_name": "Budi",
            "sender_phone": "+6281200001111",
            "location": Location(text="Jl. Pajajaran No. 10, Bogor", lat=-6.595038, lon=106.816635),
        },
    ),
    ("status_delivered.form", IgnoredMessage),
    ("status_failed.form", IgnoredMessage),
]


@pytest.mark.parametrize(("filename", "expected"), CASES, ids=[case[0] for case in CASES])
def test_twilio_payload_parses_to_channel_message(filename: str, expected: dict[str, Any] | type[Exception]) -> None:
    raw = payload(filename)
    if isinstance(expected, type):
        with pytest.raises(expected):
            twilio.parse(raw, {})
        return
    [message] = twilio.parse(raw, {})
    assert {name: getattr(message, name) for name in expected} == expected
    assert message.external_id == twilio.external_id(raw, {})


def test_status_callbacks_become_receipts_with_their_own_inbox_key() -> None:
    raw = payload("status_failed.form")
    assert twilio.receipts(raw, {}) == [
        Receipt(provider_message_id="SM9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4c", status="undelivered", error="30003")
    ]
    assert twilio.external_id(raw, {}) == "SM9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4c:undelivered"
    assert twilio.receipts(payload("sms_basic.form"), {}) == []


# --- webhook ---------------------------------------------------------------------------------------


def client_for(inbox: MemoryInbox, *, public_url: str = PUBLIC_URL, base_url: str = PUBLIC_URL) -> TestClient:
    app = app_with(twilio.router(settings(), make_context(inbox, public_url=public_url)))
    return TestClient(app, base_url=base_url)


def post(client: TestClient, body: bytes, signature: str | None, path: str = "/webhooks/twilio") -> httpx.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    response: httpx.Response = client.post(path, content=body, headers=headers)
    return response


def test_signed_webhook_is_stored_raw_and_answered_with_empty_twiml() -> None:
    inbox = MemoryInbox()
    body = payload("whatsapp_image.form")
    response = post(client_for(inbox), body, sign(PUBLIC_URL + "/webhooks/twilio", body))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    [item] = inbox.items
    assert (item.channel, item.provider, item.external_id) == (
        "whatsapp",
        "twilio",
        "MM7d6c5b4a39281706f5e4d3c2b1a09f8e",
    )
    assert item.raw == body
    assert item.ignored_reason is None


def test_forged_signature_is_refused_and_nothing_stored() -> None:
    inbox = MemoryInbox()
    body = payload("sms_basic.form")
    response = post(client_for(inbox), body, sign(PUBLIC_URL + "/webhooks/twilio", body, token="not-the-token"))
    assert response.status_code == 403
    assert inbox.calls == 0


def test_signature_over_a_tampered_body_is_refused() -> None:
    inbox = MemoryInbox()
    body = payload("sms_basic.form")
    signature = sign(PUBLIC_URL + "/webhooks/twilio", body)
    response = post(client_for(inbox), body.replace(b"Cibinong", b"Cileungsi"), signature)
    assert response.status_code == 403
    assert inbox.calls == 0


def test_missing_signature_is_refused_and_nothing_stored() -> None:
    inbox = MemoryInbox()
    response = post(client_for(inbox), payload("sms_basic.form"), None)
    assert response.status_code == 403
    assert inbox.calls == 0


def test_behind_a_proxy_the_signature_is_checked_against_the_public_url() -> None:
    inbox = MemoryInbox()
    # The proxy forwards to http://10.0.0.7:8080; Twilio signed the public https URL.
    client = client_for(inbox, public_url=PUBLIC_URL, base_url="http://10.0.0.7:8080")
    body = payload("sms_basic.form")
    seen_by_us = post(client, body, sign("http://10.0.0.7:8080/webhooks/twilio", body))
    assert seen_by_us.status_code == 403
    assert inbox.calls == 0
    signed_by_twilio = post(client, body, sign(PUBLIC_URL + "/webhooks/twilio", body))
    assert signed_by_twilio.status_code == 200
    assert len(inbox.items) == 1


def test_query_string_is_part_of_the_signed_url() -> None:
    inbox = MemoryInbox()
    client = client_for(inbox, base_url="http://10.0.0.7:8080")
    body = payload("sms_basic.form")
    path = "/webhooks/twilio?region=3201"
    assert post(client, body, sign(PUBLIC_URL + "/webhooks/twilio", body), path).status_code == 403
    assert post(client, body, sign(PUBLIC_URL + path, body), path).status_code == 200


def test_without_public_url_the_request_url_is_used() -> None:
    inbox = MemoryInbox()
    client = client_for(inbox, public_url="", base_url="http://127.0.0.1:8080")
    body = payload("sms_basic.form")
    assert post(client, body, sign("http://127.0.0.1:8080/webhooks/twilio", body)).status_code == 200


def test_redelivered_sid_is_stored_once_and_answered_the_same() -> None:
    inbox = MemoryInbox()
    client = client_for(inbox)
    body = payload("sms_basic.form")
    signature = sign(PUBLIC_URL + "/webhooks/twilio", body)
    first, second = post(client, body, signature), post(client, body, signature)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert len(inbox.items) == 1


def test_status_callback_is_stored_under_sid_and_status() -> None:
    inbox = MemoryInbox()
    body = payload("status_delivered.form")
    response = post(client_for(inbox), body, sign(PUBLIC_URL + "/webhooks/twilio", body))
    assert response.status_code == 200
    [item] = inbox.items
    assert item.external_id == "SM9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b:delivered"


def test_store_failure_answers_try_again() -> None:
    inbox = MemoryInbox()
    inbox.fail_with = RuntimeError("database is down")
    body = payload("sms_basic.form")
    response = post(client_for(inbox), body, sign(PUBLIC_URL + "/webhooks/twilio", body))
    assert response.status_code == 503


# --- media ---------------------------------------------------------------------------------------------


def fetch(descriptor: dict[str, Any], saved: SavedFiles | None = None, **overrides: Any) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as http:
            context = make_context(MemoryInbox(), http=http, saved=saved)
            return await twilio.fetch_media(descriptor, settings(**overrides), context)

    return run(go())


def test_fetch_media_uses_basic_auth_on_the_api_host_and_not_on_the_redirect_target() -> None:
    jpeg = b"\xff\xd8\xff\xe0 fake jpeg bytes"
    with ProviderApi() as api, ProviderApi() as cdn:
        # Another host name (both stand-ins listen on 127.0.0.1): credentials are per host.
        cdn_url = cdn.url.replace("127.0.0.1", "localhost")
        api.route(ANY, "/Media/ME1", Canned(status=307, headers={"Location": f"{cdn_url}/store/ME1"}))
        cdn.route(ANY, "/store/ME1", Canned(body=jpeg, content_type="image/jpeg"))
        saved = SavedFiles()
        attachment = fetch({"url": f"{api.url}/Media/ME1", "content_type": "image/jpeg"}, saved, api_base=api.url)
    assert (attachment.filename, attachment.content_type, attachment.size) == ("ME1.jpg", "image/jpeg", len(jpeg))
    assert saved.blobs[attachment.sha256] == jpeg
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert api.requests[0].headers["authorization"] == expected_auth
    assert "authorization" not in cdn.requests[0].headers  # the CDN is not Twilio's API


def test_relative_media_url_is_fetched_from_the_api_base() -> None:
    with ProviderApi() as api:
        api.route(ANY, "/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", Canned(body=b"png", content_type="image/png"))
        attachment = fetch(
            {"url": "/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "content_type": None}, api_base=api.url
        )
    assert (attachment.content_type, attachment.size) == ("image/png", 3)


def test_media_url_on_a_foreign_host_gets_no_credentials() -> None:
    with ProviderApi() as api, ProviderApi() as elsewhere:
        elsewhere.route(ANY, "/metrics", Canned(body=b"lapor_inbox_accepted_total 3"))
        url = elsewhere.url.replace("127.0.0.1", "localhost") + "/metrics"
        fetch({"url": url, "content_type": None}, api_base=api.url)
    assert "authorization" not in elsewhere.requests[0].headers


@pytest.mark.parametrize(("status", "error"), [(502, ProviderError), (404, ProviderRejected)])
def test_fetch_media_failures_map_onto_retry_or_give_up(status: int, error: type[Exception]) -> None:
    with ProviderApi() as api:
        api.route(ANY, "/Media/ME1", Canned(status=status))
        with pytest.raises(error):
            fetch({"url": f"{api.url}/Media/ME1", "content_type": None}, api_base=api.url)


# --- replies -------------------------------------------------------------------------------------------


def reply(to: str = "+6281234567890", our_number: str | None = "+14155550123") -> Reply:
    return Reply(
        channel="sms",
        provider="twilio",
        to=to,
        text="Laporan Anda diterima. No. LPR-7K3Q9X. Cek status: kirim STATUS LPR-7K3Q9X",
        idempotency_key="LPR-7K3Q9X:ack",
        tracking_id="LPR-7K3Q9X",
        extra={"our_number": our_number} if our_number else {},
    )


def send(api: ProviderApi, message: Reply) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as http:
            return await twilio.send(message, settings(api_base=api.url), http)

    return run(go())


def test_send_posts_the_reply_to_the_messages_api_from_the_number_the_citizen_wrote_to() -> None:
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    with ProviderApi() as api:
        api.route(
            ANY,
            path,
            Canned(
                status=201,
                body=b'{"sid": "SMf00dfeed00000000000000000000beef", "status": "queued"}',
                content_type="application/json",
            ),
        )
        sent = send(api, reply(to="whatsapp:+6281398765432", our_number="whatsapp:+14155238886"))
    assert sent.provider_message_id == "SMf00dfeed00000000000000000000beef"
    [call] = api.requests
    assert (call.method, call.path) == ("POST", path)
    assert dict(parse_qsl(call.body.decode())) == {
        "To": "whatsapp:+6281398765432",
        "From": "whatsapp:+14155238886",
        "Body": "Laporan Anda diterima. No. LPR-7K3Q9X. Cek status: kirim STATUS LPR-7K3Q9X",
    }
    assert call.headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, ProviderError),
        (503, ProviderError),
        (429, ProviderError),
        (400, ProviderRejected),
        (401, ProviderRejected),
    ],
)
def test_send_maps_api_failures_onto_retry_or_reject(status: int, error: type[Exception]) -> None:
    with ProviderApi() as api:
        api.default = Canned(status=status, body=b'{"code": 21211, "message": "nope"}', content_type="application/json")
        with pytest.raises(error):
            send(api, reply())


def test_send_to_an_unreachable_api_is_retryable() -> None:
    unreachable = twilio.TwilioSettings(
        enabled=True, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base=f"http://127.0.0.1:{free_port()}"
    )

    async def go() -> Any:
        async with httpx.AsyncClient() as http:
            return await twilio.send(reply(), unreachable, http)

    with pytest.raises(ProviderError):
        run(go())


def test_send_without_our_number_is_rejected_for_good() -> None:
    with ProviderApi() as api, pytest.raises(ProviderRejected):
        send(api, reply(our_number=None))
    assert api.requests == []


# --- settings ------------------------------------------------------------------------------------------


def test_settings_default_api_base_and_secret_token() -> None:
    parsed = twilio.TwilioSettings(enabled=True, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    assert parsed.api_base == "https://api.twilio.com"
    assert isinstance(parsed.auth_token, SecretStr)
    assert AUTH_TOKEN not in repr(parsed)


def test_settings_refuse_an_enabled_channel_without_token_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match=r"channels\.twilio\.auth_token"):
        twilio.TwilioSettings(enabled=True, account_sid=ACCOUNT_SID)
    with pytest.raises(ValidationError):
        twilio.TwilioSettings.model_validate({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_url": "x"})
    assert twilio.TwilioSettings().enabled is False
