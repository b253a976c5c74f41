"""Webhook forwarder: the complaint's events POSTed as JSON, signed per the Standard Webhooks spec.

A sink with a ``secret`` (``whsec_…``) gets ``complaint.created`` and ``complaint.status_changed`` events:
body ``{type, timestamp, data: {event, record}}``, headers ``webhook-id`` (the event id, the same on every
retry, so the receiver can drop repeats), ``webhook-timestamp`` (UTC seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256>``) made by the ``standardwebhooks`` package. A sink without a secret keeps the
first cut's contract: each new complaint's record, ``Idempotency-Key: <tracking id>``, no signature.

Answers: 2xx delivered; 429 and 5xx tried again, not before ``Retry-After``; 410 Gone disables the sink
(``SinkGone``); any other 4xx goes to the failed list with the answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from normalizer.errors import ProviderError, ProviderRejected, raise_for_provider_status


class RetryLater(ProviderError):
    """The receiver asked us to wait (429, 5xx); ``retry_after`` seconds when it said how long."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SinkGone(ProviderRejected):
    """410 Gone: the receiver has removed this endpoint; the sink is disabled until re-enabled."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def signed_headers(secret: str, message_id: str, body: str, now: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``; ``now`` must be UTC (the spec signs UTC seconds)."""
    now = now.astimezone(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }


async def forward(
    payload: dict[str, Any], sink: Any, idempotency_key: str, client: httpx.AsyncClient, attempts: int = 0
) -> str | None:
    """Deliver one outbox row; returns the webhook-id that was delivered."""
    if sink.secret is None:
        headers = {**sink.headers, "Idempotency-Key": payload.get("tracking_id") or idempotency_key}
        response = await _post(client, sink, headers, json=payload)
        raise_for_provider_status(response.status_code, f"sink {sink.name}", response.text[:200])
        return None
    message_id = str(payload["data"]["event"]["id"])
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    signed = signed_headers(sink.secret.get_secret_value(), message_id, body, datetime.now(UTC))
    headers = {**sink.headers, "content-type": "application/json", "Idempotency-Key": message_id, **signed}
    response = await _post(client, sink, headers, content=body.encode())
    status = response.status_code
    if status < 300:
        return message_id
    answer = f"sink {sink.name} answered {status}: {response.text[:200]}"
    if status == 410:
        raise SinkGone(answer)
    if status == 429 or status >= 500:
        raise RetryLater(answer, retry_after_seconds(response.headers.get("retry-after")))
    raise ProviderRejected(answer)


async def _post(client: httpx.AsyncClient, sink: Any, headers: dict[str, str], **body: Any) -> httpx.Response:
    try:
        return await client.post(sink.url, headers=headers, timeout=sink.timeout_s, **body)
    except httpx.HTTPError as exc:
        raise ProviderError(f"sink {sink.name} unreachable: {type(exc).__name__}") from exc
