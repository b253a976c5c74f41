"""``channels.whatsapp`` settings: the keys an operator writes in ``config.yaml``."""

from __future__ import annotations

from pydantic import Field

from channels.meta.settings import MetaAppSettings


class WhatsAppSettings(MetaAppSettings):
    registry_name = "whatsapp"
    required_when_enabled = (
        ("verify_token", "set WHATSAPP_VERIFY_TOKEN"),
        ("app_secret", "set WHATSAPP_APP_SECRET"),
        ("access_token", "set WHATSAPP_ACCESS_TOKEN"),
        ("phone_number_id", "set it to the number's id from the app's API Setup page, quoted"),
    )

    phone_number_id: str = ""
    # Hosts the access token goes to when downloading media, besides api_base's
    # (the short-lived media URLs point at Meta's lookaside host).
    media_hosts: list[str] = Field(default_factory=lambda: ["lookaside.fbsbx.com"])
