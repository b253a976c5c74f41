"""``channels.line`` settings: the keys an operator writes in ``config.yaml``."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from channels.base import ChannelSettings


class LineSettings(ChannelSettings):
    # Basic settings → Channel secret, in the LINE Developers Console: signs every webhook.
    channel_secret: SecretStr = SecretStr("")
    # A long-lived channel access token (Messaging API tab): sends replies and fetches media.
    channel_access_token: SecretStr = SecretStr("")
    # Replaces LINE's API hosts (tests point both at a local server).
    api_base: str = "https://api.line.me"
    # Message content (photos, files) is served from a host of its own.
    data_api_base: str = "https://api-data.line.me"
    # A reply token is single-use and short-lived; past this many seconds the push API is used instead.
    reply_token_seconds: int = Field(default=50, ge=0)
    # Read by the worker: a message from the same user within this many
    # minutes joins the open complaint instead of opening a new one.
    followup_window_minutes: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _secrets_present_when_enabled(self) -> LineSettings:
        if not self.enabled:
            return self
        if not self.channel_secret.get_secret_value().strip():
            raise ValueError("channels.line.channel_secret is empty — set LINE_CHANNEL_SECRET")
        if not self.channel_access_token.get_secret_value().strip():
            raise ValueError("channels.line.channel_access_token is empty — set LINE_CHANNEL_ACCESS_TOKEN")
        return self

    def api_url(self, path: str) -> str:
        return f"{self.api_base.rstrip('/')}/{path.lstrip('/')}"

    def data_url(self, path: str) -> str:
        return f"{self.data_api_base.rstrip('/')}/{path.lstrip('/')}"
