"""Every channel the gateway has, by its config key. Adding a channel is adding a line here."""

from __future__ import annotations

from channels import (
    csv_import,
    instagram,
    jasmin,
    kannel,
    line,
    manual,
    messenger,
    smpp,
    telegram,
    twilio,
    webform,
    whatsapp,
    x,
)
from channels.base import ChannelAdapter
from channels.email import imap, smtp

CHANNELS: dict[str, ChannelAdapter] = {
    "manual": manual.ADAPTER,
    "csv": csv_import.ADAPTER,
    "twilio": twilio.ADAPTER,
    "kannel": kannel.ADAPTER,
    "jasmin": jasmin.ADAPTER,
    "smpp": smpp.ADAPTER,
    "smtp": smtp.ADAPTER,
    "imap": imap.ADAPTER,
    "whatsapp": whatsapp.ADAPTER,
    "telegram": telegram.ADAPTER,
    "messenger": messenger.ADAPTER,
    "instagram": instagram.ADAPTER,
    "web": webform.ADAPTER,
    "line": line.ADAPTER,
    "x": x.ADAPTER,
}


def by_provider() -> dict[str, ChannelAdapter]:
    """Inbox rows name their provider; the worker finds the adapter that parses them here."""
    return {adapter.provider: adapter for adapter in CHANNELS.values()}
