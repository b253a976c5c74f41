"""Forwarders: deliver each new complaint to another system, through the outbox (at least once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from sinks.forwarders import webhook

Forward = Callable[[dict[str, Any], Any, str, httpx.AsyncClient], Awaitable[str | None]]

FORWARDERS: dict[str, Forward] = {
    "webhook": webhook.forward,
}
