"""The webhook Meta calls: subscription handshake and signed notifications."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from channels.base import ChannelContext
from channels.whatsapp.parse import SIGNATURE_HEADER, inbox_items
from channels.whatsapp.settings import WhatsAppSettings
from normalizer.errors import AuthError, PayloadError, StoreUnavailable

log = structlog.get_logger(__name__)

PATH = "/webhooks/whatsapp"
SUBSCRIBED = "whatsapp.subscribed"
SUBSCRIBE_REFUSED = "whatsapp.subscribe_refused"
REJECTED = "whatsapp.rejected"
MALFORMED = "whatsapp.malformed"
ACCEPTED = "whatsapp.accepted"
ACCEPT_FAILED = "whatsapp.accept_failed"


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], settings: WhatsAppSettings) -> None:
    """``AuthError`` unless the raw body carries a valid signature with our app secret."""
    given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not given:
        raise AuthError(f"whatsapp: {SIGNATURE_HEADER} missing")
    expected = sign(body, settings.app_secret.get_secret_value())
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise AuthError(f"whatsapp: {SIGNATURE_HEADER} does not match the body")


def router(settings: WhatsAppSettings, ctx: ChannelContext) -> APIRouter:
    api = APIRouter(tags=["whatsapp"])

    @api.get(PATH, response_class=PlainTextResponse)
    async def subscribe(request: Request) -> Response:
        """Meta's verification request when the webhook URL is configured."""
        query = request.query_params
        token = query.get("hub.verify_token", "")
        expected = settings.verify_token.get_secret_value()
        if query.get("hub.mode") == "subscribe" and expected and hmac.compare_digest(token.encode(), expected.encode()):
            log.info(SUBSCRIBED)
            return PlainTextResponse(query.get("hub.challenge", ""))
        log.warning(SUBSCRIBE_REFUSED, mode=query.get("hub.mode"))
        return PlainTextResponse("verify token mismatch", status_code=403)

    @api.post(PATH)
    async def notify(request: Request) -> Response:
        raw = await request.body()
        try:
            verify(raw, request.headers, settings)
        except AuthError as exc:
            log.warning(REJECTED, reason=str(exc))
            return PlainTextResponse("invalid signature", status_code=403)
        try:
            items = inbox_items(raw, {SIGNATURE_HEADER: request.headers[SIGNATURE_HEADER]})
        except PayloadError as exc:
            # Signed by Meta but unreadable: retrying will not help, say why.
            log.warning(MALFORMED, error=str(exc))
            return PlainTextResponse(str(exc), status_code=400)
        try:
            for item in items:
                accepted = await ctx.accept(item)
                log.info(ACCEPTED, external_id=item.external_id, duplicate=accepted.duplicate)
        except StoreUnavailable:
            raise  # the gateway answers every edge's "try later" (503 + Retry-After) and logs the outage once
        except Exception:
            # Not stored: Meta retries a non-2xx with backoff; rows already stored dedup then.
            log.exception(ACCEPT_FAILED)
            return PlainTextResponse("try again", status_code=503)
        return PlainTextResponse("EVENT_RECEIVED")

    return api
