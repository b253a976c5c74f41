"""``channels.x`` settings: the keys an operator writes in ``config.yaml``."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from channels.base import ChannelSettings


class XSettings(ChannelSettings):
    # The app's API secret (consumer secret): answers the CRC check and signs every webhook POST.
    consumer_secret: SecretStr = SecretStr("")
    # Our account's numeric id: events for other accounts on the same webhook are not ours to take.
    user_id: str = ""
    # An OAuth 2.0 user-context token of our account with dm.write: replies go out as DMs.
    access_token: SecretStr = SecretStr("")
    # Replaces X's API host (tests point it at a local server).
    api_base: str = "https://api.x.com"
    # Read by the worker: a message from the same user within this many
    # minutes joins the open complaint instead of opening a new one.
    followup_window_minutes: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _secrets_present_when_enabled(self) -> XSettings:
        if not self.enabled:
            return self
        if not self.consumer_secret.get_secret_value().strip():
            raise ValueError("channels.x.consumer_secret is empty — set X_CONSUMER_SECRET")
        if not self.user_id.strip().isdigit():
            raise ValueError('channels.x.user_id must be our account\'s numeric id (e.g. "4337869213")')
        if not self.access_token.get_secret_value().strip():
            raise ValueError("channels.x.access_token is empty — set X_ACCESS_TOKEN")
        return self

    def api_url(self, path: str) -> str:
        return f"{self.api_base.rstrip('/')}/{path.lstrip('/')}"
