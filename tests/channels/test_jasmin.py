"""Jasmin: payload table (decoding from ``binary`` by ``coding``), the MO webhook and its ACK, /send replies."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from channels import jasmin
from channels.base import Reply
from normalizer.errors import IgnoredMessage, PayloadError, ProviderError, ProviderRejected
from tests.channels.sms_http_support import PAYLOADS, MemoryInbox, app_with, make_context, run
from tests.support.provider_api import Canned, ProviderApi

SECRET = "jasmin-to-lapor"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def payload(name: str) -> bytes:
    return (PAYLOADS / "jasmin" / name).read_bytes()


def settings(**overrides: Any) -> jasmin.JasminSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "secret": SECRET,
        "send_url": "http://127.0.0.1:1401/send",
        "username": "lapor",
        "password": "rahasia",
    }
    return jasmin.JasminSettings(**(values | overrides))


CASES: list[tuple[str, dict[str, Any] | type[Exception]]] = [
    (
        "gsm_text.form",
        {
            "channel": "sms",
            "provider": "jasmin",
            "external_id": "5f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9",
            "text": "LAPOR Saluran air tersumbat di RT 04 RW 02 Kel. Sukamaju",
            "sender_phone": "+6281234567890",
            "reply_to": "+6281234567890",
            "extra": {"our_number": "1708"},
        },
    ),
    # GSM 03.38 is not ASCII: '@' is 0x00, '$' is 0x02 and '€' is ESC 0x65.
    (
        "gsm_alphabet.form",
        {"text": "Lapor: email saya budi@contoh.id, biaya $ 50 ribu €", "reply_to": "+6281298765432"},
    ),
    (
        "ucs2_emoji.form",
        {
            "external_id": "a1b2c3d4-e5f6-4711-8899-aabbccddeeff",
            "text": "LAPOR pungli di kantor desa 😠 tolong",
            "sender_phone": "+6285600011122",
        },
    ),
    ("latin1.form", {"text": "Lapor: café di trotoar menghalangi pejalan kaki", "sender_phone": "+6281311112222"}),
    ("dlr_delivered.form", IgnoredMessage),
    # Real Jasmin posts coding as the raw data_coding octet: %08 is UCS-2, %00 the SMSC default.
    ("ucs2_coding_octet.form", {"text": "LAPOR جالان rusak 🚧 di Jl. Merdeka", "sender_phone": "+6281299887766"}),
    ("gsm_coding_octet.form", {"text": "LAPOR akun_saya @desa", "sender_phone": "+6281377788899"}),
    # UTF-8 octets labelled UCS-2 (no valid UTF-16): read as UTF-8, not as replacement characters.
    ("utf8_labelled_ucs2.form", {"text": "Jalan رسک rusak", "sender_phone": "+6281355566677"}),
]


@pytest.mark.parametrize(("filename", "expected"), CASES, ids=[case[0] for case in CASES])
def test_jasmin_payload_parses_to_channel_message(filename: str, expected: dict[str, Any] | type[Exception]) -> None:
    raw = payload(filename)
    if isinstance(expected, type):
        with pytest.raises(expected):
            jasmin.parse(raw, {})
        return
    [message] = jasmin.parse(raw, {})
    assert {name: getattr(message, name) for name in expected} == expected
    assert message.external_id == jasmin.external_id(raw, {})


@pytest.mark.parametrize("coding", [b"8", b"%08", b"08"])
def test_coding_as_digit_or_raw_octet_is_the_same_ucs2(coding: bytes) -> None:
    raw = (
        b"id=c1&from=6281234567890&to=1708&coding="
        + coding
        + b"&binary="
        + "sumur 💧".encode("utf-16-be").hex().encode()
    )
    assert jasmin.parse(raw, {})[0].text == "sumur 💧"


@pytest.mark.parametrize(
    ("alphabet", "text"),
    [("ascii", "LAPOR akun_saya @desa"), ("latin1", "LAPOR akun_saya @desa"), ("gsm0338", "LAPOR akun§saya ¡desa")],
)
def test_data_coding_0_is_read_in_the_alphabet_the_edge_recorded(alphabet: str, text: str) -> None:
    raw = payload("ascii_default_alphabet.form")
    assert jasmin.parse(raw, {"default_alphabet": alphabet})[0].text == text


def test_content_is_used_when_binary_is_missing_and_bad_hex_is_a_payload_error() -> None:
    [message] = jasmin.parse(b"id=x1&from=6281234567890&to=1708&coding=0&content=LAPOR+banjir", {})
    assert message.text == "LAPOR banjir"
    with pytest.raises(PayloadError):
        jasmin.parse(b"id=x2&from=6281234567890&to=1708&coding=8&binary=zz", {})


# --- webhook ---------------------------------------------------------------------------------------


def client_for(inbox: MemoryInbox) -> TestClient:
    return TestClient(app_with(jasmin.router(settings(), make_context(inbox))))


def test_mo_post_is_stored_and_acked_exactly() -> None:
    inbox = MemoryInbox()
    body = payload("ucs2_emoji.form")
    response = client_for(inbox).post(f"/webhooks/jasmin?secret={SECRET}", content=body, headers=FORM)
    assert response.status_code == 200
    assert response.content == b"ACK/Jasmin"
    assert response.headers["content-type"].startswith("text/plain")
    [item] = inbox.items
    assert (item.channel, item.provider, item.external_id) == ("sms", "jasmin", "a1b2c3d4-e5f6-4711-8899-aabbccddeeff")
    assert item.raw == body
    assert item.meta == {"default_alphabet": "gsm0338"}
    assert jasmin.parse(item.raw, {})[0].text == "LAPOR pungli di kantor desa 😠 tolong"


def test_mo_get_from_a_get_connector_is_stored_without_the_secret() -> None:
    inbox = MemoryInbox()
    response = client_for(inbox).get(f"/webhooks/jasmin?secret={SECRET}&" + payload("gsm_text.form").decode())
    assert response.content == b"ACK/Jasmin"
    [item] = inbox.items
    assert SECRET.encode() not in item.raw
    assert item.raw == payload("gsm_text.form")


@pytest.mark.parametrize("path", ["/webhooks/jasmin?secret=guess", "/webhooks/jasmin"])
def test_wrong_or_missing_secret_is_refused_and_nothing_stored(path: str) -> None:
    inbox = MemoryInbox()
    response = client_for(inbox).post(path, content=payload("gsm_text.form"), headers=FORM)
    assert response.status_code == 403
    assert response.content != b"ACK/Jasmin"
    assert inbox.calls == 0


def test_redelivered_id_is_stored_once_and_acked_each_time() -> None:
    inbox = MemoryInbox()
    client = client_for(inbox)
    answers = [
        client.post(f"/webhooks/jasmin?secret={SECRET}", content=payload("gsm_text.form"), headers=FORM).content
        for _ in range(3)
    ]
    assert answers == [b"ACK/Jasmin"] * 3
    assert len(inbox.items) == 1


def test_store_failure_is_not_acked_so_jasmin_retries() -> None:
    inbox = MemoryInbox()
    inbox.fail_with = RuntimeError("database is down")
    response = client_for(inbox).post(
        f"/webhooks/jasmin?secret={SECRET}", content=payload("gsm_text.form"), headers=FORM
    )
    assert response.status_code == 503
    assert b"ACK/Jasmin" not in response.content


# --- replies -------------------------------------------------------------------------------------------


def reply(text: str) -> Reply:
    return Reply(
        channel="sms", provider="jasmin", to="+6281234567890", text=text, idempotency_key="reply:1:0",
        extra={"our_number": "1708"},
    )  # fmt: skip


def send(api: ProviderApi, message: Reply) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as http:
            return await jasmin.send(message, settings(send_url=f"{api.url}/send"), http)

    return run(go())


def send_with(api: ProviderApi, message: Reply, **overrides: Any) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as http:
            return await jasmin.send(message, settings(send_url=f"{api.url}/send", **overrides), http)

    return run(go())


def test_gsm_reply_goes_to_digits_as_gsm_septets_with_coding_0() -> None:
    with ProviderApi() as api:
        api.default = Canned(body=b'Success "07033084-5cfd-4812-90a4-e4d24ffb6e3d"')
        sent = send(api, reply("Laporan Anda diterima. No. LPR-7K3Q9X."))
    assert sent.provider_message_id == "07033084-5cfd-4812-90a4-e4d24ffb6e3d"
    [call] = api.requests
    assert (call.method, call.path) == ("POST", "/send")
    assert dict(parse_qsl(call.body.decode())) == {
        "username": "lapor",
        "password": "rahasia",
        # Jasmin copies `to` into destination_addr as is: no '+', TON/NPI come from the connector.
        "to": "6281234567890",
        "from": "1708",
        "coding": "0",
        "hex-content": "Laporan Anda diterima. No. LPR-7K3Q9X.".encode("ascii").hex(),
    }


@pytest.mark.parametrize(
    ("alphabet", "octets"),
    [("gsm0338", b"cek_status @1708"), ("ascii", b"cek_status @1708"), ("latin1", b"cek_status @1708")],
)
def test_reply_octets_follow_the_smsc_default_alphabet(alphabet: str, octets: bytes) -> None:
    if alphabet == "gsm0338":
        octets = octets.replace(b"_", b"\x11").replace(b"@", b"\x00")  # GSM 03.38: '_' 0x11, '@' 0x00
    with ProviderApi() as api:
        api.default = Canned(body=b'Success "x"')
        send_with(api, reply("cek_status @1708"), default_alphabet=alphabet)
    sent = dict(parse_qsl(api.requests[0].body.decode()))
    assert (sent["coding"], bytes.fromhex(sent["hex-content"])) == ("0", octets)


def test_gsm_text_the_ascii_alphabet_cannot_carry_goes_as_ucs2() -> None:
    with ProviderApi() as api:
        api.default = Canned(body=b'Success "x"')
        send_with(api, reply("biaya 5 € ditagih"), default_alphabet="ascii")
    sent = dict(parse_qsl(api.requests[0].body.decode()))
    assert (sent["coding"], bytes.fromhex(sent["hex-content"]).decode("utf-16-be")) == ("8", "biaya 5 € ditagih")


def test_non_gsm_reply_is_sent_as_hex_ucs2_with_coding_8() -> None:
    text = "Laporan diterima 🙏 LPR-7K3Q9X"
    with ProviderApi() as api:
        api.default = Canned(body=b'Success "a-b-c"')
        send(api, reply(text))
    sent = dict(parse_qsl(api.requests[0].body.decode()))
    assert sent["coding"] == "8"
    assert bytes.fromhex(sent["hex-content"]).decode("utf-16-be") == text
    assert "content" not in sent


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b'Error "Cannot send submit_sm"', ProviderError),
        (412, b'Error "Cannot charge submit_sm"', ProviderRejected),
        (403, b'Error "Authentication failure for username:lapor"', ProviderRejected),
    ],
)
def test_send_failures_map_onto_retry_or_reject(status: int, body: bytes, error: type[Exception]) -> None:
    with ProviderApi() as api:
        api.default = Canned(status=status, body=body)
        with pytest.raises(error):
            send(api, reply("halo"))


def test_settings_refuse_an_enabled_channel_without_secret() -> None:
    with pytest.raises(ValidationError, match=r"channels\.jasmin\.secret"):
        jasmin.JasminSettings(enabled=True)


def test_an_enabled_jasmin_without_send_url_stops_start_up() -> None:
    with pytest.raises(ValidationError, match=r"channels\.jasmin\.send_url is empty — set it to Jasmin's HTTP API"):
        jasmin.JasminSettings(enabled=True, secret=SECRET)
