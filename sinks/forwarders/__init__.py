"""Forwarders: deliver complaints and their events to other systems, through the outbox (at least once).

Each is one module with the same call: ``forward(payload, sink, idempotency_key, client, attempts)``
returning the far side's id for what it took (or None). ``open311`` also has a fetch-updates half.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from sinks.forwarders import open311, webhook

Forward = Callable[[dict[str, Any], Any, str, httpx.AsyncClient, int], Awaitable[str | None]]

FORWARDERS: dict[str, Forward] = {
    "webhook": webhook.forward,
    "open311": open311.forward,
}
