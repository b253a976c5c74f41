"""SMS text on the wire: GSM 03.38 (3GPP TS 23.038) and SMPP ``data_coding``, one copy of each.

Not a channel: the SMPP bind and the HTTP SMS gateways (Kannel, Jasmin) all
use it. Septets here are unpacked, one per octet, as SMPP and Jasmin carry
them; packing into 7 bits is the SMSC's business on the air side.

``data_coding 0`` means "the SMSC's default alphabet", which is GSM 03.38 on
most SMSCs and ASCII or Latin-1 on others (the same byte 0x5F is ``§`` in GSM
and ``_`` in ASCII). That is a per-connection setting, ``Alphabet`` here and
``default_alphabet`` in each SMS channel's config.
"""

from __future__ import annotations

from typing import Literal

Alphabet = Literal["gsm0338", "latin1", "ascii"]

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


# data_coding values (SMPP 3.4 §5.2.19) and the alphabets they name.
DC_SMSC_DEFAULT = 0x00
DC_IA5 = 0x01
DC_BINARY = 0x02
DC_LATIN1 = 0x03
DC_BINARY_8BIT = 0x04
DC_CYRILLIC = 0x06
DC_HEBREW = 0x07
DC_UCS2 = 0x08
_SINGLE_BYTE_CODECS = {DC_IA5: "ascii", DC_LATIN1: "latin-1", DC_CYRILLIC: "iso8859-5", DC_HEBREW: "iso8859-8"}
_DEFAULT_CODECS: dict[str, str] = {"gsm0338": "gsm", "latin1": "latin-1", "ascii": "ascii"}


def _alphabet_of(data_coding: int) -> Literal["default", "gsm", "8bit", "ucs2"] | str:
    """Which alphabet a ``data_coding`` names: SMPP's own values, then GSM 03.38 DCS groups."""
    if data_coding == DC_SMSC_DEFAULT:
        return "default"
    if data_coding == DC_UCS2:
        return "ucs2"
    if data_coding in _SINGLE_BYTE_CODECS:
        return _SINGLE_BYTE_CODECS[data_coding]
    if data_coding in (DC_BINARY, DC_BINARY_8BIT):
        return "8bit"
    group = data_coding & 0xF0
    if group == 0xF0:  # data coding/message class: bit 2 picks 8-bit over the GSM alphabet
        return "8bit" if data_coding & 0x04 else "gsm"
    if group in (0xC0, 0xD0):  # message waiting indication, GSM alphabet
        return "gsm"
    if group == 0xE0:  # message waiting indication, UCS-2
        return "ucs2"
    if data_coding < 0x80:  # general data coding groups (some SMSCs pass the air DCS through)
        return ("gsm", "8bit", "ucs2", "8bit")[(data_coding >> 2) & 0x03]
    return "8bit"


def decode_data_coding(body: bytes, data_coding: int, default_alphabet: Alphabet = "gsm0338") -> str | None:
    """A message body as text by its ``data_coding``; None for binary data (ringtones, WAP push).

    ``default_alphabet`` is what data_coding 0 ("SMSC default") means on this connection.
    """
    alphabet = _alphabet_of(data_coding)
    if alphabet == "default":
        alphabet = _DEFAULT_CODECS[default_alphabet]
    if alphabet == "gsm":
        return gsm_decode(body)
    if alphabet == "ucs2":
        return _ucs2(body)
    if alphabet == "8bit":
        return None
    return body.decode(alphabet, errors="replace")


def _ucs2(body: bytes) -> str:
    """UCS-2/UTF-16BE (Python's codec joins surrogate pairs, which is what phones send for emoji).

    Some ESMEs label UTF-8 octets as UCS-2: bytes that are no valid UTF-16 (an odd
    length, unpaired surrogates) but valid UTF-8 are read as UTF-8 rather than as
    replacement characters.
    """
    try:
        return body.decode("utf-16-be")
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("utf-16-be", errors="replace")


def fits_default_alphabet(text: str, default_alphabet: Alphabet) -> bool:
    """True when ``text`` can go as data_coding 0: GSM 03.38 can show it and the SMSC's alphabet has its bytes."""
    if not is_gsm(text):
        return False
    if default_alphabet == "gsm0338":
        return True
    try:
        text.encode(_DEFAULT_CODECS[default_alphabet])
    except UnicodeEncodeError:
        return False
    return True


def encode_default_alphabet(text: str, default_alphabet: Alphabet) -> bytes:
    """``text`` as data_coding 0 octets on an SMSC with this default alphabet; ``ValueError`` when it does not fit."""
    if not fits_default_alphabet(text, default_alphabet):
        raise ValueError(f"not representable in the {default_alphabet} default alphabet")
    if default_alphabet == "gsm0338":
        return gsm_encode(text)
    return text.encode(_DEFAULT_CODECS[default_alphabet])
