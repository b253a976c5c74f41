"""Text cleanup shared by every channel."""

from __future__ import annotations

import re
import unicodedata

# Control characters other than newline and tab (C0, DEL, C1) and the
# invisible format characters phones like to insert (zero-width space, BOM).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """NFC, no control characters, runs of spaces folded, at most one blank line."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_optional(text: str | None) -> str | None:
    """``clean_text`` that turns an empty result into None."""
    if text is None:
        return None
    cleaned = clean_text(text)
    return cleaned or None
