"""``channels.telegram`` settings: the keys an operator writes in ``config.yaml``."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from channels.base import ChannelSettings

_TOKEN = re.compile(r"^(\d+):[\w-]+$")
# What Telegram allows in setWebhook's secret_token.
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TelegramSettings(ChannelSettings):
    token: SecretStr = SecretStr("")
    # webhook: Telegram posts to /webhooks/telegram (needs http.public_url reachable
    # from the internet); polling: the gateway long-polls getUpdates itself.
    mode: Literal["webhook", "polling"] = "webhook"
    secret_token: SecretStr = SecretStr("")
    # Replaces Telegram's Bot API host (a local Bot API server, or a test server).
    api_base: str = "https://api.telegram.org"
    # Read by the worker: a message from the same chat within this many
    # minutes joins the open complaint instead of opening a new one.
    followup_window_minutes: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _usable_when_enabled(self) -> TelegramSettings:
        if not self.enabled:
            return self
        if not _TOKEN.match(self.token.get_secret_value()):
            raise ValueError("channels.telegram.token is not a bot token (<bot id>:<secret>) — set TELEGRAM_TOKEN")
        secret = self.secret_token.get_secret_value()
        if self.mode == "webhook" and not secret:
            raise ValueError("channels.telegram.secret_token is empty in webhook mode — set TELEGRAM_SECRET_TOKEN")
        if secret and not _SECRET.match(secret):
            raise ValueError("channels.telegram.secret_token may hold only A-Z, a-z, 0-9, _ and - (1-256 characters)")
        return self

    @property
    def bot_id(self) -> str:
        """The numeric prefix of the token: update ids are unique per bot."""
        return self.token.get_secret_value().split(":", 1)[0]
