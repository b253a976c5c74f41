"""X channel: payload table, CRC challenge, signatures, webhook edge, DM replies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from channels import x
from channels.base import Reply
from channels.x import XSettings, inbox_items, parse, sign, verify
from channels.x.api import dm_path
from normalizer.errors import AuthError, IgnoredMessage, PayloadError, ProviderError, ProviderRejected
from normalizer.types import Location
from tests.channels.meta_rig import MemoryInbox, fake_provider_api, make_context
from tests.support.provider_api import Canned, ProviderApi

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "x"
CONSUMER_SECRET = "Wn2xX4hq3nY8tGQ3ZrVqWJ9hYk6bV1cD0eF5gH7iJ2kL3mN4oP"
OUR_ID = "4337869213"
CITIZEN = "3001969357"
SENT = Canned.json({"data": {"dm_conversation_id": "3001969357-4337869213", "dm_event_id": "1582838223456789012"}})


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def signature(body: bytes, secret: str = CONSUMER_SECRET) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def settings(api_base: str = "https://api.x.com") -> XSettings:
    return XSettings(
        enabled=True, consumer_secret=CONSUMER_SECRET, user_id=OUR_ID, access_token="x-user-token", api_base=api_base
    )


DEWI = {"reply_to": CITIZEN}
TABLE: dict[str, dict[str, Any]] = {
    "dm_text.json": {
        **DEWI,
        "key": "dm:954491830116155396",
        "sender_name": "Dewi Lestari",
        "text": "LAPOR saluran air tersumbat di Jl. Pajajaran depan SMP 5, sudah seminggu",
    },
    "dm_media.json": {
        **DEWI,
        "key": "dm:954491830116155398",
        "sender_name": "Dewi Lestari",
        "text": "Foto jalan berlubang di Jl. Dadali",
        "external_media_url": ("https://ton.twitter.com/1.1/ton/data/dm/954491830116155398/954491825443651584/abc.jpg"),
    },
    "mention.json": {
        **DEWI,
        "key": "tweet:954487130212257792",
        "sender_name": "@dewilestari",
        "text": "lampu PJU di Jl. Sudirman mati semua sejak Senin, gelap dan rawan",
        "public": True,
    },
    "mention_extended_with_place.json": {
        **DEWI,
        "key": "tweet:954487130212257793",
        "sender_name": "@dewilestari",
        "text": (
            "Pungutan liar di loket pembuatan KTP kecamatan, diminta Rp50.000 untuk mempercepat. "
            "Sudah tiga warga mengalami hal yang sama minggu ini."
        ),
        "location": Location(text="Bogor, Jawa Barat"),
        "public": True,
    },
    "mention_with_coordinates.json": {
        **DEWI,
        "key": "tweet:954487130212257794",
        "sender_name": "@dewilestari",
        "text": "pohon tumbang menutup jalan di sini",
        "location": Location(lat=-6.5950, lon=106.7972),
        "public": True,
    },
}
IGNORED = {"dm_own.json", "own_tweet.json", "retweet_of_mention.json", "favorite.json"}
MALFORMED = {"malformed_truncated.json", "malformed_events_not_a_list.json"}
OTHERS = {"two_dms.json"}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_payload_becomes_the_expected_channel_message(name: str) -> None:
    expected = TABLE[name]
    (item,) = inbox_items(payload(name))
    assert (item.external_id, item.ignored_reason) == (expected["key"], None)
    (msg,) = parse(item.raw, item.meta)
    assert (msg.channel, msg.provider, msg.anonymity) == ("x", "x", "public")
    assert msg.text == expected["text"]
    assert msg.sender_name == expected["sender_name"]
    assert msg.reply_to == expected["reply_to"]
    assert msg.location == expected.get("location")
    assert msg.extra.get("x_public", False) == expected.get("public", False)
    assert msg.extra.get("external_media_url") == expected.get("external_media_url")
    assert msg.extra["x_handle"] == "@dewilestari"


def test_every_payload_file_is_covered_by_a_test() -> None:
    assert {path.name for path in PAYLOADS.iterdir()} == set(TABLE) | IGNORED | MALFORMED | OTHERS


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_our_own_dms_and_tweets_retweets_and_likes_are_kept_as_ignored_rows(name: str) -> None:
    (item,) = inbox_items(payload(name))
    assert item.ignored_reason
    with pytest.raises(IgnoredMessage):
        parse(item.raw, item.meta)


def test_tweet_that_does_not_mention_us_is_not_a_complaint() -> None:
    body = json.loads(payload("mention.json"))
    body["tweet_create_events"][0]["entities"]["user_mentions"] = []
    (item,) = inbox_items(json.dumps(body).encode())
    assert item.ignored_reason == "x tweet that does not mention us"


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_unreadable_body_is_a_payload_error(name: str) -> None:
    with pytest.raises(PayloadError):
        inbox_items(payload(name))


def test_two_dms_in_one_body_are_two_rows() -> None:
    items = inbox_items(payload("two_dms.json"))
    assert [item.external_id for item in items] == ["dm:954491830116155401", "dm:954491830116155402"]
    assert [parse(item.raw, item.meta)[0].text for item in items] == [
        "Sampah tidak diangkut di Perumahan Bumi Indah",
        "Sudah dua minggu",
    ]


# ---- CRC and signatures ---------------------------------------------------------------------------


def test_crc_response_token_is_the_documented_hmac() -> None:
    token = "9b4507b3-9040-4669-9ca3-6b94edb50553"
    expected = (
        "sha256="
        + base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), token.encode(), hashlib.sha256).digest()).decode()
    )
    app = FastAPI()
    app.include_router(x.router(settings(), make_context(httpx.AsyncClient())))

    async def ask(params: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            return await client.get("/webhooks/x", params=params)

    answered = asyncio.run(ask({"crc_token": token}))
    assert (answered.status_code, answered.json()) == (200, {"response_token": expected})
    assert asyncio.run(ask({})).status_code == 400


def test_valid_signature_passes() -> None:
    body = payload("dm_text.json")
    verify(body, {"x-twitter-webhooks-signature": signature(body)}, settings())
    assert sign(body, CONSUMER_SECRET) == signature(body)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-twitter-webhooks-signature": signature(payload("dm_text.json"), "another-app")},
        {"x-twitter-webhooks-signature": signature(b"{}")},
        {"x-twitter-webhooks-signature": "sha256="},
    ],
    ids=["missing", "other secret", "forged for another body", "empty"],
)
def test_bad_signature_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(AuthError):
        verify(payload("dm_text.json"), headers, settings())


def test_altered_body_is_refused() -> None:
    body = payload("dm_text.json")
    with pytest.raises(AuthError):
        verify(body.replace(b"Pajajaran", b"Juanda"), {"x-twitter-webhooks-signature": signature(body)}, settings())


def test_enabled_channel_needs_its_secrets_and_a_numeric_account_id() -> None:
    with pytest.raises(ValidationError, match="consumer_secret"):
        XSettings(enabled=True, user_id=OUR_ID, access_token="t")
    with pytest.raises(ValidationError, match="user_id"):
        XSettings(enabled=True, consumer_secret="s", user_id="@lapor_bogor", access_token="t")
    with pytest.raises(ValidationError, match="access_token"):
        XSettings(enabled=True, consumer_secret="s", user_id=OUR_ID)


# ---- the edge -------------------------------------------------------------------------------------


def post_all(inbox: MemoryInbox, bodies: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    app = FastAPI()
    app.include_router(x.router(settings(), make_context(httpx.AsyncClient(), inbox)))

    async def go() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            return [(await client.post("/webhooks/x", content=b, headers=h)).status_code for b, h in bodies]

    return asyncio.run(go())


def signed(name: str) -> tuple[bytes, dict[str, str]]:
    body = payload(name)
    return body, {"x-twitter-webhooks-signature": signature(body)}


def test_edge_stores_one_row_per_event_and_dedups_a_redelivery() -> None:
    inbox = MemoryInbox()
    codes = post_all(inbox, [signed("dm_text.json"), signed("dm_text.json"), signed("mention.json")])
    assert codes == [200, 200, 200]
    assert inbox.keys == ["dm:954491830116155396", "tweet:954487130212257792"]


def test_edge_keeps_activity_for_another_account_as_ignored() -> None:
    body = json.loads(payload("dm_text.json"))
    body["for_user_id"] = "999"
    raw = json.dumps(body).encode()
    inbox = MemoryInbox()
    assert post_all(inbox, [(raw, {"x-twitter-webhooks-signature": signature(raw)})]) == [200]
    (item,) = inbox.items.values()
    assert item.ignored_reason == "x activity for another account"


def test_edge_answers_403_to_forged_400_to_unreadable_and_503_when_the_store_fails() -> None:
    inbox = MemoryInbox()
    body = payload("dm_text.json")
    forged = (body, {"x-twitter-webhooks-signature": signature(body, "x")})
    assert post_all(inbox, [forged, (body, {}), signed("malformed_truncated.json")]) == [403, 403, 400]
    inbox.fail = True
    assert post_all(inbox, [signed("dm_text.json")]) == [503]
    assert inbox.keys == []


# ---- DM replies -----------------------------------------------------------------------------------


def send(api: ProviderApi) -> Any:
    reply = Reply(
        channel="x", provider="x", to=CITIZEN, text="Laporan Anda diterima. No. LPR-7K3Q9X", idempotency_key="reply:1:0"
    )

    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            return await x.send(reply, settings(api.url), client)

    return asyncio.run(go())


def test_reply_is_a_dm_to_the_citizen_with_the_user_token() -> None:
    with fake_provider_api() as api:
        api.route("POST", dm_path(CITIZEN), SENT)
        sent = send(api)
        (request,) = api.seen("POST", dm_path(CITIZEN))
    assert sent.provider_message_id == "1582838223456789012"
    assert request.headers["authorization"] == "Bearer x-user-token"
    assert request.json() == {"text": "Laporan Anda diterima. No. LPR-7K3Q9X"}


@pytest.mark.parametrize(("status", "error"), [(503, ProviderError), (429, ProviderError), (403, ProviderRejected)])
def test_dm_failures_map_onto_the_error_tree(status: int, error: type[Exception]) -> None:
    with fake_provider_api() as api:
        api.route("POST", dm_path(CITIZEN), Canned.json({"title": "Forbidden", "detail": "not allowed"}, status=status))
        with pytest.raises(error):
            send(api)
