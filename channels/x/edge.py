"""The webhook X calls: the CRC challenge (GET) and signed activity (POST)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from collections.abc import Mapping

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from channels.base import ChannelContext, InboxItem
from channels.webhooks import EdgeEvents, take
from channels.x.parse import SIGNATURE_HEADER, inbox_items
from channels.x.settings import XSettings
from normalizer.errors import AuthError

log = structlog.get_logger(__name__)

PATH = "/webhooks/x"
CRC_ANSWERED = "x.crc_answered"
EVENTS = EdgeEvents.of("x")


def sign(data: bytes, consumer_secret: str) -> str:
    """``sha256=<base64 HMAC-SHA256>``: the CRC response token and the POST signature alike."""
    digest = hmac.new(consumer_secret.encode(), data, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def verify(body: bytes, headers: Mapping[str, str], settings: XSettings) -> None:
    given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.title())
    if not given:
        raise AuthError(f"x: {SIGNATURE_HEADER} missing")
    expected = sign(body, settings.consumer_secret.get_secret_value())
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise AuthError(f"x: {SIGNATURE_HEADER} does not match the body")


def router(settings: XSettings, ctx: ChannelContext) -> APIRouter:
    api = APIRouter(tags=["x"])

    @api.get(PATH)
    async def crc(request: Request) -> Response:
        """X's challenge when the webhook is registered, and again about hourly."""
        token = request.query_params.get("crc_token")
        if not token:
            return PlainTextResponse("crc_token missing", status_code=400)
        log.info(CRC_ANSWERED)
        return JSONResponse({"response_token": sign(token.encode(), settings.consumer_secret.get_secret_value())})

    @api.post(PATH)
    async def activity(request: Request) -> Response:
        raw = await request.body()

        def items_of(body: bytes) -> list[InboxItem]:
            items = inbox_items(body, {SIGNATURE_HEADER: request.headers[SIGNATURE_HEADER]})
            if not settings.user_id:
                return items
            # Another account subscribed on the same app: kept for provenance, not ours to take.
            return [
                item
                if item.meta.get("for_user_id") == settings.user_id
                else dataclasses.replace(item, ignored_reason="x activity for another account")
                for item in items
            ]

        # X retries a delivery that failed.
        return await take(raw, request.headers, lambda b, h: verify(b, h, settings), items_of, ctx, EVENTS)

    return api
