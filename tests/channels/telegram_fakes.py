"""aiogram's own test seam: a ``BaseSession`` that answers Bot API methods from a table.

No request leaves the machine. Answers go through aiogram's ``check_response``
so results are typed (and errors raised) exactly as with the real API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods.base import TelegramMethod, TelegramType

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
BOT_ID = "7012345678"
API_BASE = "https://api.telegram.test"


class FakeTelegramSession(BaseSession):
    def __init__(self) -> None:
        super().__init__(api=TelegramAPIServer.from_base(API_BASE))
        self.calls: list[TelegramMethod[Any]] = []
        # API method name -> (HTTP status, response body as the Bot API would send it)
        self.answers: dict[str, tuple[int, dict[str, Any]]] = {}
        # file URL -> bytes
        self.files: dict[str, bytes] = {}

    def answer(self, method: str, result: Any) -> None:
        self.answers[method] = (200, {"ok": True, "result": result})

    def fail(self, method: str, status: int, description: str, **parameters: Any) -> None:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.answers[method] = (status, body)

    def called(self, method: str) -> list[TelegramMethod[Any]]:
        return [call for call in self.calls if call.__api_method__ == method]

    async def close(self) -> None:
        """Nothing to close."""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.calls.append(method)
        status, body = self.answers[method.__api_method__]
        response = self.check_response(bot=bot, method=method, status_code=status, content=json.dumps(body))
        return cast(TelegramType, response.result)

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield self.files[url]


def fake_bot() -> tuple[Bot, FakeTelegramSession]:
    session = FakeTelegramSession()
    return Bot(TOKEN, session=session), session


def sent_message(chat_id: int, message_id: int, text: str) -> dict[str, Any]:
    """What sendMessage returns."""
    return {
        "message_id": message_id,
        "from": {"id": int(BOT_ID), "is_bot": True, "first_name": "Lapor Kota", "username": "LaporKotaBot"},
        "chat": {"id": chat_id, "type": "private", "first_name": "Dewi"},
        "date": 1764065000,
        "text": text,
    }
