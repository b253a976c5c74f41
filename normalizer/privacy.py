"""Identity numbers written inside a report's own text, masked for reporters who chose to be anonymous.

The normalizer masks the stored record; the edges that carry an anonymity choice (manual entry, the
web form) mask the raw row they keep the same way, so the original is kept nowhere.
"""

from __future__ import annotations

from lokal import PiiType, mask_pii

PII_IN_BODY: tuple[PiiType, ...] = ("PHONE", "EMAIL", "NIK", "KK")


def mask_body(text: str) -> str:
    """Phone numbers, e-mail addresses and 16-digit NIK/KK numbers replaced by placeholders ([PHONE_1]...)."""
    return mask_pii(text, types=PII_IN_BODY).text
