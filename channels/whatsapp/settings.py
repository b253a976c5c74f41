"""``channels.whatsapp`` settings: the keys an operator writes in ``config.yaml``."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from channels.base import ChannelSettings

# Keys that must carry a value once the channel is enabled, with the
# environment variable the docs suggest for each.
_REQUIRED_WHEN_ENABLED: tuple[tuple[str, str], ...] = (
    ("verify_token", "WHATSAPP_VERIFY_TOKEN"),
    ("app_secret", "WHATSAPP_APP_SECRET"),
    ("access_token", "WHATSAPP_ACCESS_TOKEN"),
    ("phone_number_id", "WHATSAPP_PHONE_NUMBER_ID"),
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
        for key, env in _REQUIRED_WHEN_ENABLED:
            value = getattr(self, key)
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if not text.strip():
                raise ValueError(f"channels.whatsapp.{key} is empty — set {env}")
        return self

    def graph_url(self, path: str) -> str:
        """``{api_base}/{api_version}/{path}``."""
        return f"{self.api_base.rstrip('/')}/{self.api_version}/{path.lstrip('/')}"
