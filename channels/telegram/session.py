"""aiogram's Bot over the gateway's own ``httpx.AsyncClient``.

aiogram's stock session opens its own aiohttp pool; the gateway hands every
channel one injected httpx client instead (tests plug their seams there), so
this ``BaseSession`` sends aiogram's typed methods through that client and
leaves response checking (errors, retry_after) to aiogram itself.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods.base import TelegramMethod, TelegramType

from channels.telegram.settings import TelegramSettings
from normalizer.errors import ProviderError, ProviderRejected


class HttpxSession(BaseSession):
    def __init__(self, client: httpx.AsyncClient, api: TelegramAPIServer) -> None:
        super().__init__(api=api)
        self._client = client

    async def close(self) -> None:
        """The client belongs to the caller, who closes it."""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        files: dict[str, Any] = {}
        form: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:
                form[key] = prepared
        if files:
            raise TelegramAPIError(method=method, message="file uploads are not used by the gateway")
        try:
            response = await self._client.post(url, data=form, timeout=self.timeout if timeout is None else timeout)
        except httpx.TransportError as exc:
            raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        checked = self.check_response(bot=bot, method=method, status_code=response.status_code, content=response.text)
        return cast(TelegramType, checked.result)

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        async with self._client.stream("GET", url, headers=headers, timeout=timeout) as response:
            if raise_for_status:
                response.raise_for_status()
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk


def make_bot(settings: TelegramSettings, client: httpx.AsyncClient) -> Bot:
    api = TelegramAPIServer.from_base(settings.api_base)
    return Bot(settings.token.get_secret_value(), session=HttpxSession(client, api))


@asynccontextmanager
async def provider_errors(action: str) -> AsyncIterator[None]:
    """aiogram's and httpx's errors as the gateway's: outages retry, refusals do not."""
    try:
        yield
    except (TelegramServerError, TelegramRetryAfter, TelegramNetworkError) as exc:
        raise ProviderError(f"telegram: {action} failed: {exc}") from exc
    except TelegramAPIError as exc:
        raise ProviderRejected(f"telegram: {action} refused: {exc}") from exc
    except AiogramError as exc:  # an answer aiogram could not decode: a proxy's error page, say
        raise ProviderError(f"telegram: {action} failed: {exc}") from exc
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status >= 500 or status == 429:
            raise ProviderError(f"telegram: {action} answered {status}") from exc
        raise ProviderRejected(f"telegram: {action} answered {status}") from exc
    except httpx.TransportError as exc:
        raise ProviderError(f"telegram: {action} failed: {type(exc).__name__}") from exc
