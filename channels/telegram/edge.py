"""Where updates come in: the webhook Telegram posts to, or our own getUpdates long-poll."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Mapping
from typing import Any

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from channels.base import ChannelContext, InboxItem
from channels.telegram.bot_api import ALLOWED_UPDATES, WEBHOOK_PATH
from channels.telegram.handlers import CHANNEL, PROVIDER, load_update
from channels.telegram.session import make_bot, provider_errors
from channels.telegram.settings import TelegramSettings
from normalizer.errors import PayloadError, ProviderError, StoreUnavailable, raise_for_provider_status

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
REJECTED = "telegram.rejected"
MALFORMED = "telegram.malformed"
ACCEPTED = "telegram.accepted"
ACCEPT_FAILED = "telegram.accept_failed"
POLL_FAILED = "telegram.poll_failed"
POLLING = "telegram.polling"
LONG_POLL_SECONDS = 25


def inbox_item(raw: bytes, bot_id: str) -> InboxItem:
    """The inbox row of one update, keyed ``<bot id>:<update_id>``; ``PayloadError`` if unreadable."""
    update_id = load_update(raw)["update_id"]
    return InboxItem(
        channel=CHANNEL,
        provider=PROVIDER,
        external_id=f"{bot_id}:{update_id}",
        raw=raw,
        meta={"bot_id": bot_id, "update_id": update_id},
    )


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    return f"{meta.get('bot_id', '')}:{load_update(raw)['update_id']}"


def router(settings: TelegramSettings, ctx: ChannelContext) -> APIRouter:
    api = APIRouter(tags=["telegram"])
    if settings.mode != "webhook":
        return api  # polling installs expose nothing

    expected = settings.secret_token.get_secret_value().encode()

    @api.post(WEBHOOK_PATH)
    async def update(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            log.warning(REJECTED, reason="secret token mismatch" if given else "secret token missing")
            return PlainTextResponse("forbidden", status_code=403)
        try:
            item = inbox_item(await request.body(), settings.bot_id)
        except PayloadError as exc:
            log.warning(MALFORMED, error=str(exc))
            return PlainTextResponse(str(exc), status_code=400)
        try:
            accepted = await ctx.accept(item)
        except StoreUnavailable:
            raise  # the gateway answers every edge's "try later" (503 + Retry-After) and logs the outage once
        except Exception:
            # Not stored: Telegram re-sends an update until it gets a 2xx.
            log.exception(ACCEPT_FAILED)
            return PlainTextResponse("try again", status_code=503)
        log.info(ACCEPTED, external_id=item.external_id, duplicate=accepted.duplicate)
        return PlainTextResponse("ok")

    return api


async def service(settings: TelegramSettings, ctx: ChannelContext) -> None:
    """Polling mode: long-poll getUpdates; in webhook mode there is nothing to run."""
    if settings.mode == "polling":
        await poll(settings, ctx)


async def poll(
    settings: TelegramSettings, ctx: ChannelContext, long_poll_s: int = LONG_POLL_SECONDS, pause_s: float = 5.0
) -> None:
    """One poller per bot across all gateway instances (``ctx.exclusive``), offset in ``ctx.state``.

    Each update is accepted (committed) before the offset moves past it, so a
    crash re-reads at most the updates since the last commit, and the inbox's
    unique key makes those duplicates harmless.
    """
    async with ctx.exclusive(f"telegram:{settings.bot_id}"):
        # getUpdates does not work while a webhook is set.
        async with provider_errors("deleteWebhook"):
            await make_bot(settings, ctx.http).delete_webhook(drop_pending_updates=False)
        offset_key = f"telegram:{settings.bot_id}:offset"
        # The state store is synchronous (a database row): kept off the event loop.
        offset = await asyncio.to_thread(ctx.state.get, offset_key)
        log.info(POLLING, offset=offset)
        while True:
            try:
                updates = await get_updates(ctx.http, settings, offset, long_poll_s)
            except ProviderError as exc:
                log.warning(POLL_FAILED, error=str(exc), retry_in_s=pause_s)
                await asyncio.sleep(pause_s)
                continue
            for update in updates:
                raw = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()
                item = inbox_item(raw, settings.bot_id)
                accepted = await ctx.accept(item)
                log.info(ACCEPTED, external_id=item.external_id, duplicate=accepted.duplicate)
                offset = int(update["update_id"]) + 1
                await asyncio.to_thread(ctx.state.put, offset_key, offset)


async def get_updates(
    client: httpx.AsyncClient, settings: TelegramSettings, offset: int | None, long_poll_s: int
) -> list[dict[str, Any]]:
    """The raw update objects, untouched by aiogram's models (the inbox keeps them as sent)."""
    url = f"{settings.api_base.rstrip('/')}/bot{settings.token.get_secret_value()}/getUpdates"
    body: dict[str, Any] = {"timeout": long_poll_s, "allowed_updates": ALLOWED_UPDATES}
    if offset is not None:
        body["offset"] = offset
    try:
        response = await client.post(url, json=body, timeout=long_poll_s + 10)
    except httpx.TransportError as exc:
        raise ProviderError(f"telegram: getUpdates failed: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        # 409: another poller or a webhook still set — it passes, like flood control (429).
        raise_for_provider_status(
            response.status_code, "telegram: getUpdates", _description(response), also_retry=(409,)
        )
    try:
        result = response.json()["result"]
    except (ValueError, KeyError) as exc:
        raise ProviderError("telegram: getUpdates answered without a result") from exc
    return [update for update in result if isinstance(update, dict) and isinstance(update.get("update_id"), int)]


def _description(response: httpx.Response) -> str:
    try:
        return str(response.json().get("description", ""))
    except (ValueError, AttributeError):
        return response.text[:200]
