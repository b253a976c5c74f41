"""LINE channel: payload table, signature (line-bot-sdk's parser), webhook edge, Messaging API calls."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from channels import line
from channels.base import Reply
from channels.line import LineSettings, inbox_items, parse, verify
from channels.line.api import PUSH_PATH, REPLY_PATH
from channels.media import MediaLimits, MediaRefused
from normalizer.errors import AuthError, IgnoredMessage, PayloadError, ProviderError, ProviderRejected
from normalizer.types import Location
from tests.channels.meta_rig import MemoryInbox, fake_provider_api, make_context
from tests.support.fakes import SavedFiles
from tests.support.provider_api import Canned, ProviderApi

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "line"
SECRET = "8c4b3e2f9a1d7c6b5e4f3a2b1c0d9e8f"
USER = "U4af4980629b8b5b2c5e3d1f0a7c9e2d1"
CONTENT = "/v2/bot/message/354718705033693859/content"
SENT = Canned.json({"sentMessages": [{"id": "461230966842064897", "quoteToken": "IStG5h1Tz7b"}]})


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def settings(api_base: str = "https://api.line.me", **overrides: Any) -> LineSettings:
    return LineSettings(
        enabled=True,
        channel_secret=SECRET,
        channel_access_token="line-access-token",
        api_base=api_base,
        data_api_base=api_base,
        **overrides,
    )


# file -> the fields of the ChannelMessage its (only) event must become
TABLE: dict[str, dict[str, Any]] = {
    "text.json": {"text": "LAPOR lampu jalan mati di Jl. Pemuda depan masjid sejak 3 hari"},
    "text_redelivered.json": {"text": "LAPOR lampu jalan mati di Jl. Pemuda depan masjid sejak 3 hari"},
    "image.json": {"text": "", "media": [{"id": "354718705033693859", "kind": "image", "filename": None}]},
    "file.json": {"text": "", "media": [{"id": "325708", "kind": "file", "filename": "surat_keberatan.pdf"}]},
    "location.json": {
        "text": "",
        "location": Location(text="Pasar Baru, Jl. Pasar Baru No. 1, Kota Bogor", lat=-6.5971, lon=106.806),
    },
    "sticker.json": {"text": "", "unsupported": True},
    "follow.json": {"text": "", "greeting": True},
    "quoted_reply.json": {"text": "Sudah 2 minggu belum ada perbaikan", "reply_references": ["468789532432007169"]},
    "group_text.json": {"text": "Banjir di RT 03 RW 05 Kelurahan Sukasari"},
}
IGNORED = {"unfollow.json", "postback.json"}
MALFORMED_AT_EDGE = {"malformed_truncated.json", "malformed_no_event_id.json"}
OTHERS = {"two_events.json", "connection_check.json", "malformed_bad_message.json"}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_payload_becomes_the_expected_channel_message(name: str) -> None:
    expected = TABLE[name]
    (item,) = inbox_items(payload(name))
    assert item.ignored_reason is None
    (msg,) = parse(item.raw, item.meta)
    event = json.loads(payload(name))["events"][0]
    assert (msg.channel, msg.provider) == ("line", "line")
    assert item.external_id == event["webhookEventId"]
    assert msg.text == expected["text"]
    assert msg.reply_to == USER
    assert msg.location == expected.get("location")
    assert list(msg.pending_media) == expected.get("media", [])
    assert msg.extra.get("reply_references") == expected.get("reply_references")
    assert msg.extra.get("unsupported", False) == expected.get("unsupported", False)
    assert msg.extra.get("greeting", False) == expected.get("greeting", False)
    assert msg.extra["line_reply_token"] == event["replyToken"]


def test_every_payload_file_is_covered_by_a_test() -> None:
    assert {path.name for path in PAYLOADS.iterdir()} == set(TABLE) | IGNORED | MALFORMED_AT_EDGE | OTHERS


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_unfollow_and_postback_are_kept_as_ignored_rows(name: str) -> None:
    (item,) = inbox_items(payload(name))
    assert item.ignored_reason
    with pytest.raises(IgnoredMessage):
        parse(item.raw, item.meta)


@pytest.mark.parametrize("name", sorted(MALFORMED_AT_EDGE))
def test_unreadable_body_is_a_payload_error(name: str) -> None:
    with pytest.raises(PayloadError):
        inbox_items(payload(name))


def test_event_the_sdk_cannot_read_fails_its_row_with_a_payload_error() -> None:
    (item,) = inbox_items(payload("malformed_bad_message.json"))
    with pytest.raises(PayloadError, match="malformed"):
        parse(item.raw, item.meta)


def test_redelivery_has_the_same_key_as_the_first_delivery() -> None:
    (first,) = inbox_items(payload("text.json"))
    (again,) = inbox_items(payload("text_redelivered.json"))
    assert first.external_id == again.external_id
    assert (first.meta["redelivery"], again.meta["redelivery"]) == (False, True)


def test_two_events_make_two_rows_each_parsing_only_its_own() -> None:
    raw = payload("two_events.json")
    items = inbox_items(raw)
    assert [item.external_id for item in items] == ["01FZ74CM8YH2N5Q7W3JTR6D1VB", "01FZ74CT4KD9S2X6Z8PLQ3F7WE"]
    assert [[m.text for m in parse(item.raw, item.meta)] for item in items] == [
        ["Sampah menumpuk di TPS Cibinong"],
        [""],
    ]
    assert [m.part for m in parse(raw, {})] == [0, 1]


def test_connection_check_with_no_events_makes_no_rows() -> None:
    assert inbox_items(payload("connection_check.json")) == []


# ---- signatures ---------------------------------------------------------------------------------


def test_valid_signature_passes() -> None:
    body = payload("text.json")
    verify(body, {"X-Line-Signature": signature(body)}, settings())


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing", {}),
        ("forged", {"X-Line-Signature": signature(b"{}", "not-our-secret")}),
        ("other secret", {"X-Line-Signature": signature(payload("text.json"), "not-our-secret")}),
        ("garbage", {"X-Line-Signature": "sha256=abc"}),
    ],
)
def test_bad_signature_is_refused(case: str, headers: dict[str, str]) -> None:
    with pytest.raises(AuthError):
        verify(payload("text.json"), headers, settings())


def test_altered_body_is_refused() -> None:
    body = payload("text.json")
    altered = body.replace(b"Pemuda", b"Merdeka")
    with pytest.raises(AuthError):
        verify(altered, {"X-Line-Signature": signature(body)}, settings())


def test_enabled_channel_needs_its_secrets() -> None:
    with pytest.raises(ValidationError, match="channel_secret"):
        LineSettings(enabled=True, channel_access_token="t")
    with pytest.raises(ValidationError, match="channel_access_token"):
        LineSettings(enabled=True, channel_secret="s")


# ---- the edge -------------------------------------------------------------------------------------


async def post(app: FastAPI, body: bytes, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.post("/webhooks/line", content=body, headers=headers)


def edge(inbox: MemoryInbox) -> FastAPI:
    app = FastAPI()
    # The router never calls out: the client is only there to fill the context.
    app.include_router(line.router(settings(), make_context(httpx.AsyncClient(), inbox)))
    return app


def test_edge_stores_one_row_per_event_and_dedups_redeliveries() -> None:
    inbox = MemoryInbox()
    app = edge(inbox)

    async def scenario() -> list[int]:
        codes = []
        for name in ("text.json", "text_redelivered.json", "two_events.json", "connection_check.json"):
            body = payload(name)
            codes.append((await post(app, body, {"X-Line-Signature": signature(body)})).status_code)
        return codes

    assert asyncio.run(scenario()) == [200, 200, 200, 200]
    assert inbox.keys == ["01FZ74A0TDDPYRVKNK77XKC3ZR", "01FZ74CM8YH2N5Q7W3JTR6D1VB", "01FZ74CT4KD9S2X6Z8PLQ3F7WE"]


def test_edge_answers_403_to_a_forged_body_400_to_a_signed_unreadable_one_and_503_when_the_store_fails() -> None:
    inbox = MemoryInbox()
    app = edge(inbox)
    body = payload("text.json")
    truncated = payload("malformed_truncated.json")

    async def scenario() -> list[int]:
        forged = await post(app, body, {"X-Line-Signature": signature(body, "x")})
        missing = await post(app, body, {})
        unreadable = await post(app, truncated, {"X-Line-Signature": signature(truncated)})
        inbox.fail = True
        unavailable = await post(app, body, {"X-Line-Signature": signature(body)})
        return [forged.status_code, missing.status_code, unreadable.status_code, unavailable.status_code]

    assert asyncio.run(scenario()) == [403, 403, 400, 503]
    assert inbox.keys == []


# ---- the Messaging API -----------------------------------------------------------------------------


def reply(**extra: Any) -> Reply:
    return Reply(
        channel="line",
        provider="line",
        to=USER,
        text="Laporan Anda diterima. No. LPR-7K3Q9X",
        idempotency_key="reply:7:0",
        tracking_id="LPR-7K3Q9X",
        extra=extra,
    )


def send(api: ProviderApi, outgoing: Reply) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            return await line.send(outgoing, settings(api.url), client)

    return asyncio.run(go())


def test_fresh_reply_token_is_used_with_the_access_token() -> None:
    with fake_provider_api() as api:
        api.route("POST", REPLY_PATH, SENT)
        sent = send(
            api, reply(line_reply_token="nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", line_event_at_ms=int(time.time() * 1000))
        )
        (request,) = api.seen("POST", REPLY_PATH)
    assert sent.provider_message_id == "461230966842064897"
    assert request.headers["authorization"] == "Bearer line-access-token"
    assert request.json() == {
        "replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA",
        "messages": [{"type": "text", "text": "Laporan Anda diterima. No. LPR-7K3Q9X"}],
    }
    assert api.seen("POST", PUSH_PATH) == []


def test_stale_reply_token_goes_by_push_with_a_stable_retry_key() -> None:
    with fake_provider_api() as api:
        api.route("POST", PUSH_PATH, SENT)
        old = reply(line_reply_token="nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", line_event_at_ms=1462629479859)
        send(api, old)
        send(api, old)
        first, second = api.seen("POST", PUSH_PATH)
    assert api.seen("POST", REPLY_PATH) == []
    assert first.json() == {"to": USER, "messages": [{"type": "text", "text": old.text}]}
    assert first.headers["x-line-retry-key"] == second.headers["x-line-retry-key"]
    uuid.UUID(first.headers["x-line-retry-key"])


def test_refused_reply_token_falls_back_to_push() -> None:
    with fake_provider_api() as api:
        api.route("POST", REPLY_PATH, Canned.json({"message": "Invalid reply token"}, status=400))
        api.route("POST", PUSH_PATH, SENT)
        sent = send(api, reply(line_reply_token="used", line_event_at_ms=int(time.time() * 1000)))
    assert sent.provider_message_id == "461230966842064897"


def test_push_already_accepted_under_its_retry_key_counts_as_sent() -> None:
    with fake_provider_api() as api:
        api.route("POST", PUSH_PATH, Canned.json({"message": "The retry key is already accepted"}, status=409))
        assert send(api, reply()).provider_message_id is None


@pytest.mark.parametrize(("status", "error"), [(500, ProviderError), (429, ProviderError), (403, ProviderRejected)])
def test_push_failures_map_onto_the_error_tree(status: int, error: type[Exception]) -> None:
    with fake_provider_api() as api:
        api.route("POST", PUSH_PATH, Canned.json({"message": "nope"}, status=status))
        with pytest.raises(error):
            send(api, reply())


def fetch(api: ProviderApi, media: dict[str, Any], files: SavedFiles, limits: MediaLimits | None = None) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            return await line.fetch_media(media, settings(api.url), make_context(client, files=files, media=limits))

    return asyncio.run(go())


def test_content_api_download_becomes_an_attachment_with_the_token_only_on_the_content_host() -> None:
    photo = b"\xff\xd8\xff\xe0 JFIF banjir"
    (item,) = inbox_items(payload("image.json"))
    ((media,),) = [parse(item.raw, item.meta)[0].pending_media]
    with fake_provider_api() as api:
        api.route("GET", CONTENT, Canned(body=photo, content_type="image/jpeg"))
        attachment = fetch(api, media, SavedFiles())
        (download,) = api.seen("GET", CONTENT)
    assert download.headers["authorization"] == "Bearer line-access-token"
    assert (attachment.filename, attachment.content_type, attachment.size, attachment.sha256) == (
        "line-354718705033693859.jpeg",
        "image/jpeg",
        len(photo),
        hashlib.sha256(photo).hexdigest(),
    )


@pytest.mark.parametrize(("status", "error"), [(404, ProviderRejected), (410, ProviderRejected), (503, ProviderError)])
def test_content_gone_fails_the_media_job_and_an_outage_retries_it(status: int, error: type[Exception]) -> None:
    with fake_provider_api() as api:
        api.route("GET", CONTENT, Canned.json({"message": "Not found"}, status=status))
        with pytest.raises(error):
            fetch(api, {"id": "354718705033693859", "kind": "image", "filename": None}, SavedFiles())


def test_content_over_media_max_bytes_is_refused() -> None:
    with fake_provider_api() as api:
        api.route("GET", CONTENT, Canned(body=b"\xff" * 2048, content_type="image/jpeg"))
        with pytest.raises(MediaRefused):
            fetch(
                api, {"id": "354718705033693859"}, SavedFiles(), MediaLimits(max_bytes=1024, allow_private_hosts=True)
            )


@pytest.mark.parametrize(
    ("answer", "name"),
    [
        (Canned.json({"displayName": "Dewi", "userId": USER}), "Dewi"),
        (Canned.json({"message": "Not found"}, status=404), None),  # not a friend of the account
        (Canned.json({"message": "Internal error"}, status=500), None),  # not worth holding the complaint
    ],
)
def test_display_name_comes_from_the_profile_api_when_line_gives_it(answer: Canned, name: str | None) -> None:
    (item,) = inbox_items(payload("text.json"))
    (msg,) = parse(item.raw, item.meta)
    with fake_provider_api() as api:
        api.route("GET", f"/v2/bot/profile/{USER}", answer)

        async def go() -> Any:
            async with httpx.AsyncClient() as client:
                return await line.enrich(msg, settings(api.url), make_context(client))

        enriched = asyncio.run(go())
        (asked,) = api.seen("GET", f"/v2/bot/profile/{USER}")
    assert enriched.sender_name == name
    assert asked.headers["authorization"] == "Bearer line-access-token"
