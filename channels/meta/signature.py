"""``X-Hub-Signature-256``: HMAC-SHA256 of the raw body, keyed with the app secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from normalizer.errors import AuthError

SIGNATURE_HEADER = "X-Hub-Signature-256"


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], app_secret: str, product: str) -> None:
    """``AuthError`` unless the raw body carries a valid signature with our app secret."""
    given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not given:
        raise AuthError(f"{product}: {SIGNATURE_HEADER} missing")
    if not app_secret:
        raise AuthError(f"{product}: no app_secret configured, every notification is refused")
    if not hmac.compare_digest(given.strip().encode(), sign(body, app_secret).encode()):
        raise AuthError(f"{product}: {SIGNATURE_HEADER} does not match the body")
