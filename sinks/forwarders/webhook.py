"""HTTP JSON webhook forwarder: POST the schema-v1 record, the tracking id as Idempotency-Key."""

from __future__ import annotations

from typing import Any

import httpx

from normalizer.errors import ProviderError, raise_for_provider_status


async def forward(record: dict[str, Any], sink: Any, idempotency_key: str, client: httpx.AsyncClient) -> str | None:
    headers = {**sink.headers, "Idempotency-Key": record.get("tracking_id") or idempotency_key}
    try:
        response = await client.post(sink.url, json=record, headers=headers, timeout=sink.timeout_s)
    except httpx.HTTPError as exc:
        raise ProviderError(f"sink {sink.name} unreachable: {type(exc).__name__}") from exc
    raise_for_provider_status(response.status_code, f"sink {sink.name}", response.text[:200])
    return None
