"""The webhook Meta calls for every product: subscription handshake and signed notifications."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from channels.base import ChannelContext, InboxItem
from channels.meta.settings import MetaAppSettings
from channels.meta.signature import verify
from normalizer.errors import AuthError, PayloadError, StoreUnavailable

log = structlog.get_logger(__name__)

SUBSCRIBED = "meta.subscribed"
SUBSCRIBE_REFUSED = "meta.subscribe_refused"
REJECTED = "meta.rejected"
MALFORMED = "meta.malformed"
ACCEPTED = "meta.accepted"
ACCEPT_FAILED = "meta.accept_failed"

# A verified notification's raw bytes → the inbox rows it becomes (``PayloadError`` when malformed).
InboxItems = Callable[[bytes], list[InboxItem]]


def meta_router(
    path: str, product: str, settings: MetaAppSettings, ctx: ChannelContext, inbox_items: InboxItems
) -> APIRouter:
    """``GET path`` answers Meta's verification request; ``POST path`` stores each item, then says 200."""
    api = APIRouter(tags=[product])

    @api.get(path, response_class=PlainTextResponse, name=f"{product}_subscribe")
    async def subscribe(request: Request) -> Response:
        """Meta's verification request when the webhook URL is configured."""
        query = request.query_params
        token = query.get("hub.verify_token", "")
        expected = settings.verify_token.get_secret_value()
        if query.get("hub.mode") == "subscribe" and expected and hmac.compare_digest(token.encode(), expected.encode()):
            log.info(SUBSCRIBED, product=product)
            return PlainTextResponse(query.get("hub.challenge", ""))
        log.warning(SUBSCRIBE_REFUSED, product=product, mode=query.get("hub.mode"))
        return PlainTextResponse("verify token mismatch", status_code=403)

    @api.post(path, name=f"{product}_notify")
    async def notify(request: Request) -> Response:
        raw = await request.body()
        try:
            verify(raw, request.headers, settings.app_secret.get_secret_value(), product)
        except AuthError as exc:
            log.warning(REJECTED, product=product, reason=str(exc))
            return PlainTextResponse("invalid signature", status_code=403)
        try:
            items = inbox_items(raw)
        except PayloadError as exc:
            # Signed by Meta but unreadable: retrying will not help, say why.
            log.warning(MALFORMED, product=product, error=str(exc))
            return PlainTextResponse(str(exc), status_code=400)
        try:
            for item in items:
                accepted = await ctx.accept(item)
                log.info(ACCEPTED, product=product, external_id=item.external_id, duplicate=accepted.duplicate)
        except StoreUnavailable:
            raise  # the gateway answers every edge's "try later" (503 + Retry-After) and logs the outage once
        except Exception:
            # Not stored: Meta retries a non-2xx with backoff; rows already stored dedup then.
            log.exception(ACCEPT_FAILED, product=product)
            return PlainTextResponse("try again", status_code=503)
        return PlainTextResponse("EVENT_RECEIVED")

    return api
