"""Phone numbers to E.164, the way Indonesian senders spell them."""

from __future__ import annotations

import functools

import phonenumbers

DEFAULT_REGION = "ID"


# A pure function of a string, asked twice per SMS (the channel's sender, then the record's reporter) and again
# for every message of a returning citizen: phonenumbers' parse is the dearest step of reading an SMS.
@functools.lru_cache(maxsize=4096)
def to_e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """``0812…``, ``62812…``, ``+62 812-…`` → ``+62812…``; None when it is no number.

    Short codes and alphanumeric senders are not phone numbers: they come back
    as None so that no record carries a made-up E.164.
    """
    if raw is None:
        return None
    candidate = raw.strip()
    if candidate.lower().startswith(("whatsapp:", "tel:")):
        candidate = candidate.split(":", 1)[1]
    digits = "".join(ch for ch in candidate if ch.isdigit())
    if not digits:
        return None
    # A bare international number without "+" (Kannel and SMPP send "62812…").
    if not candidate.startswith(("+", "0")) and len(digits) > 9:
        candidate = "+" + digits
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
