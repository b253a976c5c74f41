"""The webhook LINE calls: signature checked by line-bot-sdk's parser, one inbox row per event."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError

from channels.base import ChannelContext
from channels.line.parse import SIGNATURE_HEADER, inbox_items
from channels.line.settings import LineSettings
from normalizer.errors import AuthError, PayloadError

log = structlog.get_logger(__name__)

PATH = "/webhooks/line"
REJECTED = "line.rejected"
MALFORMED = "line.malformed"
ACCEPTED = "line.accepted"
ACCEPT_FAILED = "line.accept_failed"


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
        try:
            verify(raw, request.headers, settings)
        except AuthError as exc:
            log.warning(REJECTED, reason=str(exc))
            return PlainTextResponse("invalid signature", status_code=403)
        try:
            items = inbox_items(raw, {SIGNATURE_HEADER: request.headers[SIGNATURE_HEADER]})
        except PayloadError as exc:
            log.warning(MALFORMED, error=str(exc))
            return PlainTextResponse(str(exc), status_code=400)
        try:
            for item in items:
                accepted = await ctx.accept(item)
                log.info(ACCEPTED, external_id=item.external_id, duplicate=accepted.duplicate)
        except Exception:
            # Not stored: LINE redelivers a non-2xx (when redelivery is on); stored rows dedup then.
            log.exception(ACCEPT_FAILED)
            return PlainTextResponse("try again", status_code=503)
        return PlainTextResponse("OK")

    return api
