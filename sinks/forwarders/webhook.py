"""HTTP JSON webhook forwarder: POST the schema-v1 record, the tracking id as Idempotency-Key."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.errors import ProviderError, ProviderRejected


def raise_for_provider(response: httpx.Response, what: str) -> None:
    """5xx and 429 are worth a retry; any other refusal will not get better by repeating it."""
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderError(f"{what} answered {response.status_code}")
    if response.status_code >= 400:
        raise ProviderRejected(f"{what} refused with {response.status_code}: {response.text[:200]}")


async def forward(record: dict[str, Any], sink: Any, idempotency_key: str, client: httpx.AsyncClient) -> str | None:
    headers = {**sink.headers, "Idempotency-Key": record.get("tracking_id") or idempotency_key}
    try:
        response = await client.post(sink.url, json=record, headers=headers, timeout=sink.timeout_s)
    except httpx.HTTPError as exc:
        raise ProviderError(f"sink {sink.name} unreachable: {type(exc).__name__}") from exc
    raise_for_provider(response, f"sink {sink.name}")
    return None
