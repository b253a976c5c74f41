"""Secrets never reach the inbox's ``headers``/``meta``: one rule for every channel, applied as a row is written.

A provider's signature, a shared secret in a query string, a bearer token:
they prove a delivery at the edge and are worth nothing afterwards except to
whoever reads a backup. The row keeps that the header was there (its value
``[redacted]``), which is the provenance; the raw body is kept as sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

# Header and meta names that carry credentials (X-Twilio-Signature, X-Hub-Signature-256,
# X-Telegram-Bot-Api-Secret-Token, Authorization, Cookie, api_key, password...).
_SECRET_NAME = re.compile(
    r"signature|secret|token|passw|authorization|cookie|api[-_]?key|^(auth|sig|hmac|key|pass|pwd)$",
    re.IGNORECASE,
)
# A secret carried in a URL's query string: ?secret=…, &token=…, &password=…
_SECRET_PARAM = re.compile(
    r"([?&](?:secret|token|access_token|password|pass|pwd|api_key|apikey|key|signature|sig|auth)=)[^&#\s\"']*",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_PARAM.sub(lambda match: match.group(1) + REDACTED, value)
    if isinstance(value, Mapping):
        return without_secrets(value)
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def without_secrets(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with every credential-named entry redacted and query-string secrets cut out of every text."""
    return {key: REDACTED if is_secret_name(str(key)) else _clean(value) for key, value in values.items()}
