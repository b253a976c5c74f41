"""Telegram channel: payload table through aiogram's Dispatcher, webhook edge, polling, Bot API calls."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiogram.methods import GetFile, SendMessage, SetWebhook
from fastapi import FastAPI
from pydantic import ValidationError

from channels import telegram
from channels.base import Accepted, InboxItem, Reply
from channels.media import MediaLimits, MediaRefused
from channels.telegram import TelegramSettings, inbox_item, parse
from channels.telegram.bot_api import fetch_with_bot, send_with_bot
from channels.telegram.edge import poll
from normalizer.errors import IgnoredMessage, PayloadError, ProviderError, ProviderRejected
from normalizer.types import Attachment, ChannelMessage, Location
from tests.channels.meta_rig import MemoryInbox, fake_provider_api, make_context, wait_until
from tests.channels.telegram_fakes import API_BASE, BOT_ID, TOKEN, fake_bot, sent_message
from tests.support.fakes import Locks, MemoryState, SavedFiles
from tests.support.provider_api import Canned, ProviderApi

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "telegram"
SECRET = "rahasia-webhook_2026"
DEWI = {"sender_name": "Dewi Lestari", "sender_telegram_id": "523901234", "reply_to": "523901234"}


MAX_BYTES = MediaLimits().max_bytes


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def settings(api_base: str = API_BASE, mode: str = "webhook") -> TelegramSettings:
    return TelegramSettings.model_validate(
        {"enabled": True, "token": TOKEN, "mode": mode, "secret_token": SECRET, "api_base": api_base}
    )


def only_message(name: str) -> ChannelMessage:
    item = inbox_item(payload(name), BOT_ID)
    (message,) = parse(item.raw, item.meta)
    return message


# file -> the fields of the ChannelMessage it must become (media: kind and file_id)
TABLE: dict[str, dict[str, Any]] = {
    "text.json": {**DEWI, "text": "Lapor: drainase tersumbat di Jl. Pemuda, air meluap ke rumah warga setiap hujan"},
    "command_start.json": {**DEWI, "text": ""},
    "command_help_with_bot_mention.json": {**DEWI, "text": ""},
    "command_status.json": {**DEWI, "text": "STATUS LPR-7K3Q9X"},
    "command_status_without_id.json": {**DEWI, "text": "STATUS"},
    "command_lapor.json": {**DEWI, "text": "Pelayanan KTP di Disdukcapil lambat"},
    "photo_with_caption.json": {
        **DEWI,
        "text": "Tumpukan sampah di pinggir Kali Code, sudah seminggu tidak diangkut",
        "media": [("photo", "AgACAgUAAxkBAAIBZ2VhbGxfbGFyZ2U")],
    },
    "document.json": {
        **DEWI,
        "text": "Bukti pungutan di kantor desa",
        "media": [("document", "BQACAgUAAxkBAAIBaGRvY3VtZW50")],
    },
    "location.json": {**DEWI, "text": "", "location": Location(lat=-7.797068, lon=110.370529)},
    "venue.json": {
        **DEWI,
        "text": "",
        "location": Location(text="Monumen Nasional, Gambir, Jakarta Pusat", lat=-6.175392, lon=106.827153),
    },
    "contact_own.json": {**DEWI, "text": "Kontak: Dewi Lestari 6281234567890", "sender_phone": "6281234567890"},
    "contact_other.json": {**DEWI, "text": "Kontak: Pak RT +62 813 9876 5432"},
    "album_part_1.json": {
        **DEWI,
        "text": "Jembatan penghubung desa retak, foto dari dua sisi",
        "media": [("photo", "AgACAgUAAxkBAAIBZ2VhbGxfbGFyZ2UA1")],
        "media_group_id": "13607245124563456",
    },
    "album_part_2.json": {
        **DEWI,
        "text": "",
        "media": [("photo", "AgACAgUAAxkBAAIBZ2VhbGxfbGFyZ2UA2")],
        "media_group_id": "13607245124563456",
    },
    "sticker.json": {**DEWI, "text": "", "unsupported": True},
    "reply_to_ack.json": {
        **DEWI,
        "text": "Sampai sekarang belum ada petugas yang datang",
        "reply_references": ["523901234:117"],
    },
    "group_text.json": {**DEWI, "text": "Lampu PJU di perempatan mati", "reply_to": "-1001234567890"},
    # Bot API before 4.5: no file_unique_id, no is_bot; neither is needed to make the complaint.
    "photo_before_bot_api_4_5.json": {
        **DEWI,
        "text": "Trotoar ambles di depan SD Negeri 3",
        "media": [("photo", "AgADBQADqKcxG0old_large")],
    },
    "reply_before_bot_api_4_5.json": {
        **DEWI,
        "text": "Surat dari kelurahan, belum ditindaklanjuti",
        "media": [("document", "BQADBQADold_document")],
        "reply_references": ["523901234:117"],
    },
}
IGNORED = ["edited_message.json", "callback_query.json"]
MALFORMED = {
    "malformed_truncated.json": "not JSON",
    "malformed_no_update_id.json": "no integer update_id",
    "malformed_bad_message.json": "bad message.message_id",
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_update_becomes_the_expected_channel_message(name: str) -> None:
    expected = TABLE[name]
    msg = only_message(name)
    assert (msg.channel, msg.provider) == ("telegram", "telegram")
    assert msg.text == expected["text"]
    assert msg.sender_name == expected["sender_name"]
    assert msg.sender_telegram_id == expected["sender_telegram_id"]
    assert msg.sender_phone == expected.get("sender_phone")
    assert msg.reply_to == expected["reply_to"]
    assert msg.location == expected.get("location")
    assert [(m["kind"], m["file_id"]) for m in msg.pending_media] == expected.get("media", [])
    assert msg.extra.get("media_group_id") == expected.get("media_group_id")
    assert msg.extra.get("reply_references") == expected.get("reply_references")
    assert msg.extra.get("unsupported", False) == expected.get("unsupported", False)
    assert msg.extra["telegram_username"] == "dewi_lestari"
    assert msg.external_id == f"{expected['reply_to']}:{msg.extra['telegram_message_id']}"


@pytest.mark.parametrize("name", IGNORED)
def test_update_without_a_new_message_is_ignored(name: str) -> None:
    with pytest.raises(IgnoredMessage):
        parse(payload(name), {"bot_id": BOT_ID})


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_update_is_a_payload_error_naming_the_problem(name: str) -> None:
    with pytest.raises(PayloadError, match=MALFORMED[name]):
        parse(payload(name), {"bot_id": BOT_ID})


def test_every_payload_file_is_covered_by_a_test() -> None:
    assert {path.name for path in PAYLOADS.iterdir()} == set(TABLE) | set(IGNORED) | set(MALFORMED)


def test_parse_works_inside_a_running_event_loop_like_the_worker() -> None:
    async def in_loop() -> list[ChannelMessage]:
        return parse(payload("command_status.json"), {})

    assert [m.text for m in asyncio.run(in_loop())] == ["STATUS LPR-7K3Q9X"]


def test_album_parts_share_the_media_group_and_only_the_first_carries_the_caption() -> None:
    first, second = only_message("album_part_1.json"), only_message("album_part_2.json")
    assert first.extra["media_group_id"] == second.extra["media_group_id"]
    assert (first.reply_to, second.reply_to) == ("523901234", "523901234")
    assert first.text and not second.text
    assert (first.extra.get("silent_followup"), second.extra.get("silent_followup")) == (None, True)


# --- webhook edge ------------------------------------------------------------


async def call_webhook(inbox: MemoryInbox, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        app = FastAPI()
        app.include_router(telegram.router(settings(), make_context(http, inbox)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            return await client.post("/webhooks/telegram", content=body, headers=headers)


def post_update(inbox: MemoryInbox, body: bytes, secret: str | None = SECRET) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return asyncio.run(call_webhook(inbox, body, headers))


def test_update_with_the_secret_is_stored_raw_keyed_by_bot_and_update_id() -> None:
    inbox = MemoryInbox()
    response = post_update(inbox, payload("photo_with_caption.json"))
    assert response.status_code == 200
    (item,) = inbox.items.values()
    assert item.external_id == f"{BOT_ID}:871250007"
    assert item.raw == payload("photo_with_caption.json")


@pytest.mark.parametrize(
    "secret",
    ["tebakan", "", None, SECRET[:-1], SECRET + "x", SECRET[:1]],
    ids=["wrong", "empty", "missing", "prefix", "extra-characters", "first-character"],
)
def test_update_without_the_right_secret_is_refused_and_nothing_stored(secret: str | None) -> None:
    inbox = MemoryInbox()
    assert post_update(inbox, payload("text.json"), secret).status_code == 403
    assert inbox.items == {}


def test_redelivered_update_is_stored_once_and_answered_200_each_time() -> None:
    inbox = MemoryInbox()
    codes = [post_update(inbox, payload("text.json")).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    assert inbox.keys == [f"{BOT_ID}:871250001"]


def test_malformed_update_with_the_secret_is_a_400_and_nothing_stored() -> None:
    inbox = MemoryInbox()
    response = post_update(inbox, payload("malformed_no_update_id.json"))
    assert response.status_code == 400
    assert "update_id" in response.text
    assert inbox.items == {}


def test_update_nested_ten_thousand_deep_is_a_400_naming_it_not_a_crash() -> None:
    inbox = MemoryInbox()
    response = post_update(inbox, b'{"update_id": 1, "message": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    assert response.status_code == 400
    assert "recursion" in response.text
    assert inbox.items == {}


def test_store_failure_answers_5xx_so_telegram_resends() -> None:
    assert post_update(MemoryInbox(fail=True), payload("text.json")).status_code >= 500


def test_polling_mode_exposes_no_webhook() -> None:
    async def routes() -> list[str]:
        async with httpx.AsyncClient() as http:
            api = telegram.router(settings(mode="polling"), make_context(http))
            return [getattr(route, "path", "") for route in api.routes]

    assert asyncio.run(routes()) == []


# --- Bot API through aiogram with a fake BaseSession --------------------------------


def reply(to: str = "523901234", extra: dict[str, Any] | None = None) -> Reply:
    return Reply(
        channel="telegram",
        provider="telegram",
        to=to,
        text="Laporan Anda diterima. No. LPR-7K3Q9X.",
        idempotency_key="reply:1:0",
        tracking_id="LPR-7K3Q9X",
        extra=extra if extra is not None else {"telegram_message_id": 101},
    )


def test_send_calls_send_message_threaded_under_the_citizens_message() -> None:
    bot, session = fake_bot()
    session.answer("sendMessage", sent_message(523901234, 118, "Laporan Anda diterima. No. LPR-7K3Q9X."))
    sent = asyncio.run(send_with_bot(bot, reply()))
    (call,) = session.called("sendMessage")
    assert isinstance(call, SendMessage)
    assert (call.chat_id, call.text) == ("523901234", "Laporan Anda diterima. No. LPR-7K3Q9X.")
    assert call.reply_parameters is not None and call.reply_parameters.message_id == 101
    assert sent.provider_message_id == "523901234:118"


@pytest.mark.parametrize(
    ("status", "description", "parameters", "error"),
    [
        (500, "Internal Server Error", {}, ProviderError),
        (429, "Too Many Requests: retry after 7", {"retry_after": 7}, ProviderError),
        (403, "Forbidden: bot was blocked by the user", {}, ProviderRejected),
        (400, "Bad Request: chat not found", {}, ProviderRejected),
    ],
)
def test_bot_api_errors_map_to_retry_or_give_up(
    status: int, description: str, parameters: dict[str, Any], error: type[Exception]
) -> None:
    bot, session = fake_bot()
    session.fail("sendMessage", status, description, **parameters)
    with pytest.raises(error) as caught:
        asyncio.run(send_with_bot(bot, reply()))
    assert type(caught.value) is error


def test_fetch_downloads_the_largest_photo_via_get_file() -> None:
    bot, session = fake_bot()
    photo = b"\xff\xd8\xff\xe0 JFIF: rubbish on the riverbank"
    session.answer(
        "getFile",
        {"file_id": "x", "file_unique_id": "AQADlarge", "file_size": len(photo), "file_path": "photos/file_7.jpg"},
    )
    session.files[f"{API_BASE}/file/bot{TOKEN}/photos/file_7.jpg"] = photo
    files = SavedFiles()
    (media,) = only_message("photo_with_caption.json").pending_media
    attachment = asyncio.run(fetch_with_bot(media, bot, files, MAX_BYTES))
    (call,) = session.called("getFile")
    assert isinstance(call, GetFile) and call.file_id == "AgACAgUAAxkBAAIBZ2VhbGxfbGFyZ2U"
    assert files.blobs[attachment.sha256] == photo
    assert (attachment.filename, attachment.content_type) == ("file_7.jpg", "image/jpeg")


def test_a_file_too_big_for_the_bot_api_fails_its_job_for_good() -> None:
    bot, session = fake_bot()
    session.fail("getFile", 400, "Bad Request: file is too big")
    (media,) = only_message("document.json").pending_media
    with pytest.raises(ProviderRejected):
        asyncio.run(fetch_with_bot(media, bot, SavedFiles(), MAX_BYTES))


def test_a_file_over_media_max_bytes_is_refused_before_get_file() -> None:
    bot, session = fake_bot()
    (media,) = only_message("photo_with_caption.json").pending_media
    with pytest.raises(MediaRefused, match="max_bytes"):
        asyncio.run(fetch_with_bot(media, bot, SavedFiles(), max_bytes=1000))
    assert session.called("getFile") == []


def test_register_webhook_sets_url_secret_and_allowed_updates() -> None:
    bot, session = fake_bot()
    session.answer("setWebhook", True)
    url = asyncio.run(telegram.register_webhook(settings(), "https://lapor.example.go.id/", bot))
    (call,) = session.called("setWebhook")
    assert isinstance(call, SetWebhook)
    assert url == call.url == "https://lapor.example.go.id/webhooks/telegram"
    assert call.secret_token == SECRET
    assert call.allowed_updates == ["message"]


# --- Bot API over real HTTP (a local server standing in for api.telegram.org) ----------


def bot_path(method: str) -> str:
    return f"/bot{TOKEN}/{method}"


async def send_over_http(api: ProviderApi, message: Reply) -> Any:
    async with httpx.AsyncClient() as client:
        return await telegram.send(message, settings(api.url), client)


def test_send_over_http_posts_send_message_to_the_configured_api_base() -> None:
    with fake_provider_api() as api:
        api.route(
            "POST", bot_path("sendMessage"), Canned.json({"ok": True, "result": sent_message(523901234, 119, "x")})
        )
        sent = asyncio.run(send_over_http(api, reply()))
        (request,) = api.seen("POST", bot_path("sendMessage"))
    form = request.form()
    assert (form["chat_id"], form["text"]) == ("523901234", "Laporan Anda diterima. No. LPR-7K3Q9X.")
    assert sent.provider_message_id == "523901234:119"


def test_bot_api_500_over_http_is_retryable() -> None:
    with fake_provider_api() as api:
        failure = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        api.route("POST", bot_path("sendMessage"), Canned.json(failure, status=500))
        with pytest.raises(ProviderError) as caught:
            asyncio.run(send_over_http(api, reply()))
    assert caught.value.retryable


def test_fetch_over_http_calls_get_file_then_the_file_url() -> None:
    photo = b"\xff\xd8\xff\xe0 a photo of a cracked bridge"
    with fake_provider_api() as api:
        file = {"file_id": "x", "file_unique_id": "y", "file_size": len(photo), "file_path": "photos/file_9.jpg"}
        api.route("POST", bot_path("getFile"), Canned.json({"ok": True, "result": file}))
        api.route("GET", f"/file/bot{TOKEN}/photos/file_9.jpg", Canned(body=photo, content_type="image/jpeg"))
        files = SavedFiles()

        async def run() -> Attachment:
            async with httpx.AsyncClient() as http:
                ctx = make_context(http, files=files)
                (media,) = only_message("album_part_1.json").pending_media
                return await telegram.fetch_media(media, settings(api.url), ctx)

        attachment = asyncio.run(run())
        (get_file,) = api.seen("POST", bot_path("getFile"))
    assert get_file.form()["file_id"] == "AgACAgUAAxkBAAIBZ2VhbGxfbGFyZ2UA1"
    assert files.blobs[attachment.sha256] == photo


def test_polling_accepts_each_update_once_and_keeps_the_offset_in_state() -> None:
    updates = [
        {"update_id": 871250001, "message": {"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"}}},
        {"update_id": 871250002, "message": {"message_id": 2, "date": 2, "chat": {"id": 5, "type": "private"}}},
    ]
    inbox, state, locks = MemoryInbox(), MemoryState(), Locks()
    with fake_provider_api() as api:
        api.route("POST", bot_path("deleteWebhook"), Canned.json({"ok": True, "result": True}))
        api.route(
            "POST",
            bot_path("getUpdates"),
            Canned.json({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502),
            Canned.json({"ok": True, "result": updates}),
            Canned.json({"ok": True, "result": [updates[1]]}),  # a re-read after a crash: deduped
            Canned.json({"ok": True, "result": []}),
        )

        async def run() -> None:
            async with httpx.AsyncClient() as http:
                ctx = make_context(http, inbox=inbox, state=state, locks=locks)
                task = asyncio.create_task(poll(settings(api.url, mode="polling"), ctx, long_poll_s=0, pause_s=0))
                await wait_until(lambda: len(api.seen("POST", bot_path("getUpdates"))) >= 5)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        asyncio.run(run())
        offsets = [r.json().get("offset") for r in api.seen("POST", bot_path("getUpdates"))]
    assert inbox.keys == [f"{BOT_ID}:871250001", f"{BOT_ID}:871250002"]
    assert state.values[f"telegram:{BOT_ID}:offset"] == 871250003
    assert offsets[:3] == [None, None, 871250003]
    assert locks.held == [f"telegram:{BOT_ID}"]
    assert inbox.items[("telegram", "telegram", f"{BOT_ID}:871250002")].raw.startswith(b'{"update_id":871250002')


def test_webhook_service_does_nothing_in_webhook_mode() -> None:
    inbox, state, locks = MemoryInbox(), MemoryState(), Locks()
    with fake_provider_api() as api:

        async def run() -> None:
            async with httpx.AsyncClient() as http:
                ctx = make_context(http, inbox=inbox, state=state, locks=locks)
                # Returns at once: a poller here would run until cancelled (and fail the wait).
                await asyncio.wait_for(telegram.service(settings(api.url), ctx), timeout=30)

        asyncio.run(run())
        calls = api.seen("POST", bot_path("deleteWebhook")) + api.seen("POST", bot_path("getUpdates"))
    assert calls == []  # the webhook Telegram has set stays set; nobody polls it away
    assert (locks.held, state.values, inbox.items) == ([], {}, {})


class _RefusesSecond(MemoryInbox):
    """An inbox that stores the first update and is down for the rest."""

    async def __call__(self, item: InboxItem) -> Accepted:
        if self.items:
            raise RuntimeError("database unavailable")
        return await super().__call__(item)


def test_polling_never_moves_the_offset_past_an_update_that_was_not_stored() -> None:
    updates = [
        {"update_id": 871250001, "message": {"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"}}},
        {"update_id": 871250002, "message": {"message_id": 2, "date": 2, "chat": {"id": 5, "type": "private"}}},
    ]
    inbox, state = _RefusesSecond(), MemoryState()
    with fake_provider_api() as api:
        api.route("POST", bot_path("deleteWebhook"), Canned.json({"ok": True, "result": True}))
        api.route("POST", bot_path("getUpdates"), Canned.json({"ok": True, "result": updates}))

        async def run() -> BaseException | None:
            async with httpx.AsyncClient() as http:
                ctx = make_context(http, inbox=inbox, state=state)
                task = poll(settings(api.url, mode="polling"), ctx, long_poll_s=0, pause_s=0)
                try:
                    await asyncio.wait_for(task, timeout=30)
                except RuntimeError as exc:
                    return exc
                return None

        crashed = asyncio.run(run())
    assert isinstance(crashed, RuntimeError)  # the supervisor restarts the poller, which reads from the offset
    assert inbox.keys == [f"{BOT_ID}:871250001"]
    assert state.values[f"telegram:{BOT_ID}:offset"] == 871250002  # past the stored one only


# --- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ({"enabled": True, "token": "not-a-token", "secret_token": SECRET}, "token is not a bot token"),
        ({"enabled": True, "token": TOKEN}, "secret_token is empty in webhook mode"),
        ({"enabled": True, "token": TOKEN, "secret_token": "with space"}, "secret_token may hold only"),
        ({"enabled": False, "webhook_url": "x"}, "extra"),
    ],
)
def test_bad_settings_name_the_key(block: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        TelegramSettings.model_validate(block)


def test_polling_mode_needs_no_secret_and_defaults_match_the_contract() -> None:
    polling = TelegramSettings.model_validate({"enabled": True, "token": TOKEN, "mode": "polling"})
    assert (polling.bot_id, polling.api_base, polling.followup_window_minutes) == (
        BOT_ID,
        "https://api.telegram.org",
        30,
    )
