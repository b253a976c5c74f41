"""Kannel: payload table (recorded from a real smsbox), charset decoding, the get-url webhook, sendsms replies."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from channels import kannel
from channels.base import Reply
from channels.gsm import is_gsm as is_gsm7
from normalizer.errors import ProviderError, ProviderRejected
from tests.channels.sms_http_support import PAYLOADS, MemoryInbox, app_with, make_context, run
from tests.support.provider_api import Canned, ProviderApi

SECRET = "s3cret"


def payload(name: str) -> bytes:
    return (PAYLOADS / "kannel" / name).read_bytes()


def settings(**overrides: Any) -> kannel.KannelSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "secret": SECRET,
        "sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms",
        "username": "lapor",
        "password": "rahasia",
    }
    return kannel.KannelSettings(**(values | overrides))


CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "gsm_text.query",
        {
            "channel": "sms",
            "provider": "kannel",
            "external_id": "cbda7b63-2259-4908-b0a3-6f3d65c8d9a8",
            "text": "LAPOR jalan rusak @ Jl. Merdeka",
            "sender_phone": "+6281234567890",
            "reply_to": "+6281234567890",
            "extra": {"our_number": "1708"},
        },
    ),
    (
        "ucs2_emoji.query",
        {
            "channel": "sms",
            "external_id": "e5aa727c-659c-4e60-b325-4beef3b292f9",
            "text": "Jalan rusak 😡 di Jl. Merdeka",
            "reply_to": "+6281234567890",
        },
    ),
    (
        "iso8859_1.query",
        {"text": "Lapor: café di trotoar", "sender_phone": "+6285611112222", "reply_to": "+6285611112222"},
    ),
    (
        "no_id.query",
        {
            # No %I: the id is a hash of sender, receiver, time and text, the same on every redelivery.
            "external_id": "sha256:"
            + hashlib.sha256(b"+6285711223344\x001708\x001795620600\x00Lapor# sampah belum diangkut\x00").hexdigest(),
            "text": "Lapor# sampah belum diangkut",
            "sender_phone": "+6285711223344",
        },
    ),
    ("keyword_only.query", {"text": "LAPOR", "reply_to": "+6281234567890"}),
]


@pytest.mark.parametrize(("filename", "expected"), CASES, ids=[case[0] for case in CASES])
def test_kannel_payload_parses_to_channel_message(filename: str, expected: dict[str, Any]) -> None:
    raw = payload(filename)
    [message] = kannel.parse(raw, {})
    assert {name: getattr(message, name) for name in expected} == expected
    assert message.external_id == kannel.external_id(raw, {})


@pytest.mark.parametrize(
    ("data", "coding", "charset", "text"),
    [
        ("Rp 5.000 😡".encode("utf-16-be"), 2, None, "Rp 5.000 😡"),  # UCS-2 without a charset
        ("Rp 5.000 😡".encode("utf-16-be"), 2, "UCS-2", "Rp 5.000 😡"),
        ("biaya €5".encode(), 0, "UTF-8", "biaya €5"),
        (b"caf\xe9", 0, None, "café"),  # not UTF-8 and no charset: Windows-1252, not a crash
        (b"caf\xe9", 1, "x-unknown", "café"),  # unknown label: the coding decides
    ],
)
def test_text_is_decoded_by_charset_then_coding(data: bytes, coding: int, charset: str | None, text: str) -> None:
    assert kannel.decode_text(data, coding, charset) == text


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("Laporan Anda diterima. No. LPR-7K3Q9X", True),
        ("biaya €5 [resmi] {tidak} ~ | \\ ^", True),  # the extension table (sent as two septets)
        ("café, Ñ, ß, Δ, @, £, ¥, è", True),
        ("Terima kasih 🙏", False),
        ("á à ç", False),  # 'à' is GSM, 'á' and lower-case 'ç' are not
        ("“kutip”", False),
    ],
)
def test_gsm7_detection_picks_the_reply_coding(text: str, fits: bool) -> None:
    assert is_gsm7(text) is fits
    assert (b"coding=2" in kannel.sendsms_query(reply(text), settings()).encode()) is not fits


# --- webhook ---------------------------------------------------------------------------------------


def client_for(inbox: MemoryInbox) -> TestClient:
    return TestClient(app_with(kannel.router(settings(), make_context(inbox))))


def test_get_url_call_is_stored_without_the_secret_and_answered_empty() -> None:
    inbox = MemoryInbox()
    response = client_for(inbox).get("/webhooks/kannel?" + payload("ucs2_emoji.query").decode())
    assert response.status_code == 200
    assert response.content == b""  # anything else would be texted back to the citizen
    [item] = inbox.items
    assert (item.channel, item.provider, item.external_id) == ("sms", "kannel", "e5aa727c-659c-4e60-b325-4beef3b292f9")
    assert item.raw == payload("ucs2_emoji.query").removeprefix(b"secret=s3cret&")
    assert b"s3cret" not in item.raw
    [message] = kannel.parse(item.raw, {})
    assert message.text == "Jalan rusak 😡 di Jl. Merdeka"


def test_post_form_is_accepted_like_get() -> None:
    inbox = MemoryInbox()
    body = payload("gsm_text.query").removeprefix(b"secret=s3cret&")
    response = client_for(inbox).post(
        "/webhooks/kannel?secret=s3cret", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    [item] = inbox.items
    assert kannel.parse(item.raw, {})[0].text == "LAPOR jalan rusak @ Jl. Merdeka"


@pytest.mark.parametrize("query", ["secret=wrong&id=1&from=0812&text=x", "id=1&from=0812&text=x", "secret=&id=1"])
def test_wrong_or_missing_secret_is_refused_and_nothing_stored(query: str) -> None:
    inbox = MemoryInbox()
    assert client_for(inbox).get("/webhooks/kannel?" + query).status_code == 403
    assert inbox.calls == 0


def test_redelivered_id_is_stored_once_and_answered_the_same() -> None:
    inbox = MemoryInbox()
    client = client_for(inbox)
    url = "/webhooks/kannel?" + payload("gsm_text.query").decode()
    first, second = client.get(url), client.get(url)
    assert (first.status_code, first.content) == (second.status_code, second.content) == (200, b"")
    assert len(inbox.items) == 1


def test_store_failure_answers_try_again() -> None:
    inbox = MemoryInbox()
    inbox.fail_with = RuntimeError("database is down")
    assert client_for(inbox).get("/webhooks/kannel?" + payload("gsm_text.query").decode()).status_code == 503


# --- replies -------------------------------------------------------------------------------------------


def reply(text: str, our_number: str | None = "1708") -> Reply:
    return Reply(
        channel="sms",
        provider="kannel",
        to="+6281234567890",
        text=text,
        idempotency_key="reply:1:0",
        extra={"our_number": our_number} if our_number else {},
    )


def send(api: ProviderApi, message: Reply) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as http:
            return await kannel.send(message, settings(sendsms_url=f"{api.url}/cgi-bin/sendsms"), http)

    return run(go())


def query_values(query: bytes) -> dict[str, bytes]:
    pairs = (chunk.partition(b"=") for chunk in query.split(b"&"))
    return {name.decode(): unquote_to_bytes(value.replace(b"+", b" ")) for name, _, value in pairs}


def test_gsm_reply_goes_to_sendsms_as_utf8_text() -> None:
    with ProviderApi() as api:
        api.default = Canned(status=202, body=b"0: Accepted for delivery")
        sent = send(api, reply("Laporan Anda diterima. No. LPR-7K3Q9X. Cek status: kirim STATUS LPR-7K3Q9X"))
    assert sent.provider_message_id is None
    [call] = api.requests
    assert (call.method, call.path) == ("GET", "/cgi-bin/sendsms")
    assert query_values(call.query) == {
        "username": b"lapor",
        "password": b"rahasia",
        "to": b"+6281234567890",
        "from": b"1708",
        "charset": b"UTF-8",
        "text": b"Laporan Anda diterima. No. LPR-7K3Q9X. Cek status: kirim STATUS LPR-7K3Q9X",
    }


def test_destination_keeps_its_plus_escaped_so_kannel_sets_ton_international() -> None:
    with ProviderApi() as api:
        api.default = Canned(status=202, body=b"0: Accepted for delivery")
        send(api, reply("halo"))
    # A bare '+' would reach Kannel as a space; %2B is the '+' its SMPP module strips into TON 1.
    assert b"to=%2B6281234567890" in api.requests[0].query


def test_gsm_text_an_ascii_smsc_cannot_carry_goes_as_ucs2() -> None:
    async def go(api: ProviderApi) -> None:
        async with httpx.AsyncClient() as http:
            url = f"{api.url}/cgi-bin/sendsms"
            await kannel.send(reply("biaya 5 € ditagih"), settings(sendsms_url=url, default_alphabet="ascii"), http)

    with ProviderApi() as api:
        api.default = Canned(status=202, body=b"0: Accepted for delivery")
        run(go(api))
    values = query_values(api.requests[0].query)
    assert (values["coding"], values["text"]) == (b"2", "biaya 5 € ditagih".encode("utf-16-be"))


def test_non_gsm_reply_goes_as_ucs2_utf16be_octets() -> None:
    text = "Terima kasih 🙏 laporan LPR-7K3Q9X diterima"
    with ProviderApi() as api:
        api.default = Canned(status=202, body=b"0: Accepted for delivery")
        send(api, reply(text, our_number=None))
    values = query_values(api.requests[0].query)
    assert (values["coding"], values["charset"]) == (b"2", b"UTF-16BE")
    assert values["text"] == text.encode("utf-16-be")
    assert "from" not in values  # Kannel then uses its global-sender


@pytest.mark.parametrize(("status", "error"), [(503, ProviderError), (500, ProviderError), (403, ProviderRejected)])
def test_sendsms_failures_map_onto_retry_or_reject(status: int, error: type[Exception]) -> None:
    with ProviderApi() as api:
        api.default = Canned(status=status, body=b"Sending failed.")
        with pytest.raises(error):
            send(api, reply("halo"))


def test_settings_refuse_an_enabled_channel_without_secret() -> None:
    with pytest.raises(ValidationError, match=r"channels\.kannel\.secret"):
        kannel.KannelSettings(enabled=True)
    with pytest.raises(ValidationError):
        kannel.KannelSettings.model_validate({"secret": SECRET, "sendsms": "http://x"})
