"""The webhook LINE calls: signature checked by line-bot-sdk's parser, one inbox row per event."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError

from channels.base import ChannelContext, InboxItem
from channels.line.parse import SIGNATURE_HEADER, inbox_items
from channels.line.settings import LineSettings
from channels.webhooks import EdgeEvents, take
from normalizer.errors import AuthError

PATH = "/webhooks/line"
EVENTS = EdgeEvents.of("line")


def verify(body: bytes, headers: Mapping[str, str], settings: LineSettings) -> None:
    """``AuthError`` unless ``X-Line-Signature`` is the body's HMAC with our channel secret."""
    given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not given:
        raise AuthError(f"line: {SIGNATURE_HEADER} missing")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthError("line: body is not UTF-8, so it cannot carry a valid signature") from None
    try:
        # The SDK's parser checks the signature first (constant-time compare), then reads the events.
        WebhookParser(settings.channel_secret.get_secret_value()).parse(text, given)
    except InvalidSignatureError:
        raise AuthError(f"line: {SIGNATURE_HEADER} does not match the body") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # signed but malformed: ``inbox_items`` names what is wrong


def router(settings: LineSettings, ctx: ChannelContext) -> APIRouter:
    api = APIRouter(tags=["line"])

    @api.post(PATH)
    async def webhook(request: Request) -> Response:
        raw = await request.body()

        def items_of(body: bytes) -> list[InboxItem]:
            return inbox_items(body, {SIGNATURE_HEADER: request.headers[SIGNATURE_HEADER]})

        # LINE redelivers a non-2xx (when redelivery is on for the channel).
        return await take(raw, request.headers, lambda b, h: verify(b, h, settings), items_of, ctx, EVENTS, "OK")

    return api
