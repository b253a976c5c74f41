"""The keys every Meta product's channel has in ``config.yaml``."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from channels.base import ChannelSettings


class MetaAppSettings(ChannelSettings):
    """One Meta app's webhook and Graph API access; each product adds its own keys."""

    # The key under ``channels:`` (for error messages) and the keys that must be set once enabled,
    # each with what to do, as the channel's docs page says it (e.g. "set WHATSAPP_APP_SECRET").
    registry_name: ClassVar[str]
    required_when_enabled: ClassVar[tuple[tuple[str, str], ...]]

    verify_token: SecretStr = SecretStr("")
    app_secret: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    # Replaces Meta's Graph API host (tests point it at a local server).
    api_base: str = "https://graph.facebook.com"
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    # Read by the worker: a message from the same chat within this many
    # minutes joins the open complaint instead of opening a new one.
    followup_window_minutes: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _required_present_when_enabled(self) -> Self:
        if not self.enabled:
            return self
        for key, fix in self.required_when_enabled:
            value = getattr(self, key)
            text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            if not text.strip():
                raise ValueError(f"channels.{self.registry_name}.{key} is empty — {fix}")
        return self

    def graph_url(self, path: str) -> str:
        """``{api_base}/{api_version}/{path}``."""
        return f"{self.api_base.rstrip('/')}/{self.api_version}/{path.lstrip('/')}"
