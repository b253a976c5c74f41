"""Indonesian words for the codes the store keeps (channels, sources, anonymity, status, categories)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.csv_import import ANONYMITY, SOURCES

CHANNELS: dict[str, str] = {
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
    "email": "E-mail",
    "manual": "Petugas (manual)",
    "web": "Situs web",
    "line": "LINE",
    "messenger": "Messenger",
    "instagram": "Instagram",
    "x": "X (Twitter)",
}
STATUSES: dict[str, str] = {
    "received": "Diterima",
    "verified": "Terverifikasi",
    "forwarded": "Diteruskan",
    "in_progress": "Ditindaklanjuti",
    "resolved": "Selesai",
    "closed": "Ditutup",
    "rejected": "Ditolak",
}
KINDS: dict[str, str] = {
    "complaint": "Pengaduan",
    "aspiration": "Aspirasi",
    "information_request": "Permintaan informasi",
}
__all__ = ["ANONYMITY", "CHANNELS", "KINDS", "SOURCES", "STATUSES", "Labels"]


class Labels:
    """Looks a code up per dimension; the category names come from the configured taxonomy."""

    def __init__(self, categories: Mapping[str, Any]) -> None:
        self.tables: dict[str, Mapping[str, str]] = {
            "channel": CHANNELS,
            "source": SOURCES,
            "anonymity": ANONYMITY,
            "status": STATUSES,
            "kind": KINDS,
            "category": {code: category.name for code, category in categories.items()},
        }

    def __call__(self, dimension: str, code: str | None) -> str:
        if code is None:
            return "—"
        return self.tables.get(dimension, {}).get(code, code)
