"""``channels.whatsapp`` settings: the keys an operator writes in ``config.yaml``."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from channels.base import ChannelSettings

# Keys that must carry a value once the channel is enabled, with what to do, as docs/channels/whatsapp.md says it.
_REQUIRED_WHEN_ENABLED: tuple[tuple[str, str], ...] = (
    ("verify_token", "set WHATSAPP_VERIFY_TOKEN"),
    ("app_secret", "set WHATSAPP_APP_SECRET"),
    ("access_token", "set WHATSAPP_ACCESS_TOKEN"),
    ("phone_number_id", "set it to the number's id from the app's API Setup page, quoted"),
)


class WhatsAppSettings(ChannelSettings):
    verify_token: SecretStr = SecretStr("")
    app_secret: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    phone_number_id: str = ""
    # Replaces Meta's Graph API host (tests point it at a local server).
    api_base: str = "https://graph.facebook.com"
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    # Read by the worker: a message from the same chat within this many
    # minutes joins the open complaint instead of opening a new one.
    followup_window_minutes: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _secrets_present_when_enabled(self) -> WhatsAppSettings:
        if not self.enabled:
            return self
        for key, fix in _REQUIRED_WHEN_ENABLED:
            value = getattr(self, key)
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if not text.strip():
                raise ValueError(f"channels.whatsapp.{key} is empty — {fix}")
        return self

    def graph_url(self, path: str) -> str:
        """``{api_base}/{api_version}/{path}``."""
        return f"{self.api_base.rstrip('/')}/{self.api_version}/{path.lstrip('/')}"
