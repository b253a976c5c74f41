"""Tracking ids citizens read out and type back: ``LPR-7K3Q9X``."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

PREFIX = "LPR-"
# No 0/O and no 1/I: the id is read over the phone and typed on keypads.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
LENGTH = 6
_ID_BODY = f"[{ALPHABET}]{{{LENGTH},}}"
TRACKING_ID_PATTERN = re.compile(rf"\b(?:LPR[-\s]?)?({_ID_BODY})\b", re.IGNORECASE)
_STRICT = re.compile(rf"\bLPR[-\s]?({_ID_BODY})\b", re.IGNORECASE)


# 32 symbols divide 256: a random byte modulo 32 is each symbol with the same chance.
assert 256 % len(ALPHABET) == 0


def new_tracking_id(choice: Callable[[str], str] | None = None, length: int = LENGTH) -> str:
    """A fresh random id; the store retries (and grows ``length``) on a conflict.

    By default from the system's randomness, read once for the whole id (``secrets.choice`` per symbol
    asks the kernel once per symbol); ``choice`` draws each symbol instead (a test's seeded ``Random``).
    """
    if choice is None:
        return PREFIX + "".join(ALPHABET[byte % len(ALPHABET)] for byte in secrets.token_bytes(length))
    return PREFIX + "".join(choice(ALPHABET) for _ in range(length))


def canonical_tracking_id(text: str) -> str | None:
    """``lpr-7k3q9x``, ``LPR 7K3Q9X`` or ``7k3q9x`` → ``LPR-7K3Q9X``; None when it is not one."""
    match = TRACKING_ID_PATTERN.fullmatch(text.strip())
    if match is None:
        return None
    return PREFIX + match.group(1).upper()


def quoted_tracking_id(text: str) -> str | None:
    """The first ``LPR-…`` id quoted anywhere in a message (the prefix is required here)."""
    match = _STRICT.search(text)
    return PREFIX + match.group(1).upper() if match else None
