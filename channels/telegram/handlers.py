"""Telegram updates → ChannelMessages, through aiogram's Dispatcher and Routers.

The worker calls ``parse`` synchronously and it must stay pure, while
aiogram dispatches asynchronously. So ``parse`` validates the stored update
into aiogram's types (``Update.model_validate(raw, context={"bot": bot})``)
and runs ``Dispatcher.feed_update`` to completion on a private event loop in
a helper thread. The handlers below only read the message and return what it
means; the bot they get has a session that refuses any request, so a handler
that tried to talk to Telegram would fail loudly instead of doing I/O.

Replies are not sent from here: the worker queues them in the outbox and
``send`` delivers them, so a crash never loses or doubles an answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, Final, NoReturn, TypeVar

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.base import BaseSession
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.filters import Command, CommandObject
from aiogram.methods.base import TelegramMethod, TelegramType
from aiogram.types import Message, Update
from pydantic import ValidationError

from normalizer.errors import IgnoredMessage, PayloadError
from normalizer.types import ChannelMessage, Location

CHANNEL: Final = "telegram"
PROVIDER = "telegram"
# aiogram wants a well-formed token; nothing is ever sent with this one.
_OFFLINE_TOKEN = "1:offline-parse"

T = TypeVar("T")


class _NoNetwork(BaseSession):
    """The session of the bot handlers see: parsing must not call the Bot API."""

    async def close(self) -> None:
        """Nothing to close."""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        raise RuntimeError(f"telegram parse tried to call {method.__api_method__}")

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise RuntimeError("telegram parse tried to download a file")
        yield b""  # pragma: no cover - makes this an async generator


def message_id(chat_id: int | str, message_id: int) -> str:
    """How the gateway names a Telegram message (ids are unique per chat only)."""
    return f"{chat_id}:{message_id}"


def _channel_message(
    message: Message,
    text: str,
    location: Location | None = None,
    sender_phone: str | None = None,
    **extra: Any,
) -> ChannelMessage:
    user = message.from_user
    details: dict[str, Any] = {"telegram_message_id": message.message_id, "chat_type": message.chat.type}
    if user is not None and user.username:
        details["telegram_username"] = user.username
    if message.media_group_id:
        details["media_group_id"] = message.media_group_id
        if not text:
            # A further photo of an album: it joins the complaint the captioned part
            # opened; the worker may spare the citizen one acknowledgement per photo.
            details["silent_followup"] = True
    if message.reply_to_message is not None:
        # Answering one of our replies: the worker links it to that complaint.
        details["reply_references"] = [message_id(message.chat.id, message.reply_to_message.message_id)]
    pending = tuple(extra.pop("media", None) or ())  # fetched by media jobs after the complaint is stored
    details.update({key: value for key, value in extra.items() if value is not None})
    return ChannelMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        external_id=message_id(message.chat.id, message.message_id),
        text=text,
        sender_name=user.full_name if user is not None else None,
        sender_telegram_id=str(user.id) if user is not None else None,
        sender_phone=sender_phone,
        location=location,
        reply_to=str(message.chat.id),
        pending_media=pending,
        extra=details,
    )


def _caption(message: Message) -> str:
    return message.caption or message.text or ""


# --- routers, in the order the dispatcher tries them ---------------------------------------

commands = Router(name="commands")
media = Router(name="media")
places = Router(name="places")
contacts = Router(name="contacts")
texts = Router(name="texts")
fallback = Router(name="fallback")


def _command(*names: str) -> Command:
    # ignore_mention: "/status@SomeBot" needs no getMe call to be understood.
    return Command(*names, ignore_case=True, ignore_mention=True)


@commands.message(_command("start", "help", "bantuan"))
async def on_help(message: Message) -> ChannelMessage:
    """No complaint: an empty text makes the worker answer with the help text."""
    return _channel_message(message, "", command="help")


@commands.message(_command("status", "cek"))
async def on_status(message: Message, command: CommandObject) -> ChannelMessage:
    return _channel_message(message, f"STATUS {command.args or ''}".strip(), command="status")


@commands.message(_command("lapor"))
async def on_lapor(message: Message, command: CommandObject) -> ChannelMessage:
    return _channel_message(message, command.args or "", command="lapor")


@commands.message(F.text.startswith("/"))
async def on_unknown_command(message: Message) -> ChannelMessage:
    return _channel_message(message, "", command="unknown")


@media.message(F.photo)
async def on_photo(message: Message) -> ChannelMessage:
    assert message.photo is not None
    largest = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
    descriptor = {
        "file_id": largest.file_id,
        "file_unique_id": largest.file_unique_id or None,
        "kind": "photo",
        "mime_type": "image/jpeg",  # Telegram re-encodes photos as JPEG
        "filename": None,
        "file_size": largest.file_size,
    }
    return _channel_message(message, _caption(message), media=[descriptor])


@media.message(F.document | F.video | F.audio | F.voice | F.video_note)
async def on_file(message: Message) -> ChannelMessage:
    kind = next(k for k in ("document", "video", "audio", "voice", "video_note") if getattr(message, k) is not None)
    file = getattr(message, kind)
    descriptor = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id or None,
        "kind": kind,
        "mime_type": getattr(file, "mime_type", None) or ("video/mp4" if kind == "video_note" else None),
        "filename": getattr(file, "file_name", None),
        "file_size": file.file_size,
    }
    return _channel_message(message, _caption(message), media=[descriptor])


@places.message(F.location)
async def on_location(message: Message) -> ChannelMessage:
    assert message.location is not None
    venue = message.venue
    label = ", ".join(part for part in (venue.title, venue.address) if part) if venue else None
    place = Location(text=label or None, lat=message.location.latitude, lon=message.location.longitude)
    return _channel_message(message, "", location=place)


@contacts.message(F.contact)
async def on_contact(message: Message) -> ChannelMessage:
    contact = message.contact
    assert contact is not None
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    own = message.from_user is not None and contact.user_id == message.from_user.id
    shared = {"name": name or None, "phone": contact.phone_number}
    return _channel_message(
        message,
        f"Kontak: {name} {contact.phone_number}".replace("  ", " "),
        # The citizen's own number, shared with the contact button: their reporter phone.
        sender_phone=contact.phone_number if own else None,
        shared_contacts=[shared],
    )


@texts.message(F.text)
async def on_text(message: Message) -> ChannelMessage:
    return _channel_message(message, message.text or "")


@fallback.message()
async def on_unsupported(message: Message) -> ChannelMessage:
    """Stickers, polls, dice...: an empty text, answered with help."""
    return _channel_message(message, "", unsupported=True)


@cache
def _dispatcher() -> tuple[Dispatcher, Bot]:
    # No FSM: no conversation state lives in aiogram; the store holds what matters.
    dispatcher = Dispatcher(disable_fsm=True, name="lapor-telegram")
    dispatcher.include_routers(commands, media, places, contacts, texts, fallback)
    return dispatcher, Bot(_OFFLINE_TOKEN, session=_NoNetwork())


# One helper thread with its own loops: parse is called from inside the worker's event loop.
_ISOLATED = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telegram-parse")


def _run_isolated(coroutine: Coroutine[Any, Any, T]) -> T:
    return _ISOLATED.submit(asyncio.run, coroutine).result()


def load_update(raw: bytes) -> dict[str, Any]:
    """The update's JSON object; ``PayloadError`` naming what is wrong."""
    try:
        data = json.loads(raw)
    # Nested past the parser's recursion limit (a signed 10,000-deep array) is unreadable, not a crash.
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError(f"telegram update is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise PayloadError("telegram update has no integer update_id")
    return data


def _not_a_message(data: Mapping[str, Any]) -> NoReturn:
    kinds = sorted(key for key in data if key != "update_id")
    raise IgnoredMessage(f"telegram update without a new message ({', '.join(kinds) or 'empty'})")


# Fields later Bot API versions added and aiogram requires, though no complaint needs them
# (``is_bot`` since 3.0, ``file_unique_id`` since 4.5): an older update gets neutral values.
_NOT_NEEDED: Final[Mapping[str, object]] = {"is_bot": False, "file_unique_id": ""}
# Each round fills every such field pydantic reported; nesting (a reply's sender) can take a few.
_BACKFILL_ROUNDS = 8


def _fill_in(data: Any, loc: tuple[int | str, ...], name: str) -> bool:
    """Set ``name`` in the object at ``loc`` (pydantic's error path); False when the path leads nowhere."""
    node = data
    for step in loc:
        in_dict = isinstance(node, dict) and isinstance(step, str) and step in node
        in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        # Anything else is a union member's tag in the path, not a key of the data.
        if in_dict or in_list:
            node = node[step]
    if not isinstance(node, dict) or name in node:
        return False
    node[name] = _NOT_NEEDED[name]
    return True


def _validate(data: dict[str, Any], bot: Bot) -> Update:
    """The update as aiogram's ``Update``; fields only later Bot APIs send are filled in, not fatal."""
    for _ in range(_BACKFILL_ROUNDS):
        try:
            return Update.model_validate(data, context={"bot": bot})
        except ValidationError as exc:
            errors = exc.errors()
            missing = [
                (tuple(error["loc"][:-1]), str(error["loc"][-1]))
                for error in errors
                if error["type"] == "missing" and error["loc"] and error["loc"][-1] in _NOT_NEEDED
            ]
            filled = [_fill_in(data, loc, name) for loc, name in missing]
            if not any(filled):
                first = errors[0]
                where = ".".join(str(part) for part in first["loc"])
                raise PayloadError(f"telegram update has a bad {where}: {first['msg']}") from exc
    raise PayloadError("telegram update still lacks required fields after filling in the optional ones")


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    data = load_update(raw)
    dispatcher, bot = _dispatcher()
    update = _validate(data, bot)
    result = _run_isolated(dispatcher.feed_update(bot, update))
    if result is UNHANDLED or not isinstance(result, ChannelMessage):
        _not_a_message(data)
    return [result]
