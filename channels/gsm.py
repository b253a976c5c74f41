"""GSM 03.38 (3GPP TS 23.038), the SMS default alphabet: the one copy of its tables.

Not a channel: the SMPP bind and the HTTP SMS gateways (Kannel, Jasmin) both
use it. Septets here are unpacked, one per octet, as SMPP and Jasmin carry
them; packing into 7 bits is the SMSC's business on the air side.
"""

from __future__ import annotations

ESC = 0x1B

# §6.2.1, the default alphabet, index = septet value; 0x1B escapes into the extension table.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# §6.2.1.1, the extension table reached with ESC (0x1B).
GSM_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
# Each character the alphabet can carry, as the septets that carry it (one, or an ESC pair).
GSM_ENCODE: dict[str, bytes] = {ch: bytes([i]) for i, ch in enumerate(GSM_BASIC) if i != ESC}
GSM_ENCODE.update({ch: bytes([ESC, code]) for code, ch in GSM_EXTENSION.items()})

assert len(GSM_BASIC) == 128, "the GSM 03.38 table has 128 septets"


def is_gsm(text: str) -> bool:
    """True when every character of the text has a septet (the extension table included)."""
    return all(ch in GSM_ENCODE for ch in text)


def gsm_encode(text: str) -> bytes:
    """Text to unpacked GSM 03.38 septets; ``ValueError`` when a character has none."""
    try:
        return b"".join(GSM_ENCODE[ch] for ch in text)
    except KeyError as exc:
        raise ValueError(f"not representable in GSM 03.38: {exc.args[0]!r}") from None


def gsm_decode(data: bytes) -> str:
    """Unpacked GSM 03.38 septets to text, escape table included.

    An escape before a code the extension table does not know shows the basic
    character (TS 23.038: "the receiving entity shall display the character in
    the default alphabet"); a byte above 0x7F cannot be a septet and becomes U+FFFD.
    """
    out: list[str] = []
    escaped = False
    for byte in data:
        if byte > 0x7F:
            out.append("\ufffd")
            escaped = False
        elif escaped:
            out.append(GSM_EXTENSION.get(byte, " " if byte == ESC else GSM_BASIC[byte]))
            escaped = False
        elif byte == ESC:
            escaped = True
        else:
            out.append(GSM_BASIC[byte])
    return "".join(out)
