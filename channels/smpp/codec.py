"""Text on the SMPP wire: GSM 03.38, Latin-1, UCS-2, and the User Data Header.

Pure functions, no I/O. ``decode_text`` turns a ``short_message`` body into
text by its ``data_coding``; ``encode_reply`` turns a reply into the
``(data_coding, esm_class, short_messages)`` of one or more ``submit_sm``.
The GSM 03.38 alphabet itself (unpacked septets) is ``channels.gsm``'s.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from channels.gsm import GSM_ENCODE, is_gsm
from channels.gsm import gsm_decode as gsm_decode  # re-exported: SMPP tests and rigs read septets through the codec
from channels.gsm import gsm_encode as gsm_encode

Alphabet = Literal["gsm0338", "latin1", "ascii"]

UDHI = 0x40  # esm_class bit: short_message starts with a User Data Header

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

# One SMS carries 140 octets; a concatenation UDH (IE 0x00) takes 6 of them.
GSM_SINGLE_SEPTETS = 160
GSM_PART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67
MAX_PARTS = 255

IE_CONCAT_8BIT = 0x00
IE_CONCAT_16BIT = 0x08


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


def decode_text(body: bytes, data_coding: int, default_alphabet: Alphabet = "gsm0338") -> str | None:
    """A message body as text; None for binary data (ringtones, WAP push) that is no text at all.

    ``default_alphabet`` is what data_coding 0 ("SMSC default") means on this bind.
    """
    alphabet = _alphabet_of(data_coding)
    if alphabet == "default":
        alphabet = "gsm" if default_alphabet == "gsm0338" else ("latin-1" if default_alphabet == "latin1" else "ascii")
    if alphabet == "gsm":
        return gsm_decode(body)
    if alphabet == "ucs2":
        # Python's UTF-16 codec joins surrogate pairs, which is what phones send for emoji.
        return body.decode("utf-16-be", errors="replace")
    if alphabet == "8bit":
        return None
    return body.decode(alphabet, errors="replace")


@dataclass(frozen=True)
class Concat:
    """Where one part sits in a concatenated message."""

    ref: int
    total: int
    seq: int
    ref_bits: int  # 8 or 16 (UDH), or 0 for the sar_* TLVs


def split_udh(short_message: bytes) -> tuple[bytes, bytes]:
    """``(udh, body)`` of a short_message that starts with a User Data Header (UDHI set)."""
    if not short_message:
        return b"", b""
    header_len = short_message[0]
    if header_len + 1 > len(short_message):
        raise ValueError("UDH length runs past the message")
    return short_message[: header_len + 1], short_message[header_len + 1 :]


def concat_from_udh(udh: bytes) -> Concat | None:
    """The concatenation IE (0x00 8-bit ref, 0x08 16-bit ref) of a UDH, if it has one."""
    pos = 1
    while pos + 2 <= len(udh):
        iei, length = udh[pos], udh[pos + 1]
        data = udh[pos + 2 : pos + 2 + length]
        if len(data) < length:
            raise ValueError("UDH information element runs past the header")
        if iei == IE_CONCAT_8BIT and length == 3:
            return Concat(ref=data[0], total=data[1], seq=data[2], ref_bits=8)
        if iei == IE_CONCAT_16BIT and length == 4:
            (ref,) = struct.unpack(">H", data[:2])
            return Concat(ref=ref, total=data[2], seq=data[3], ref_bits=16)
        pos += 2 + length
    return None


def _units(text: str, ucs2: bool) -> list[bytes]:
    """Each character as the indivisible bytes that encode it (an ESC pair, a surrogate pair)."""
    if ucs2:
        return [ch.encode("utf-16-be") for ch in text]
    return [GSM_ENCODE[ch] for ch in text]


def _chunks(units: Sequence[bytes], limit: int) -> list[bytes]:
    """Packs units into chunks of at most ``limit`` octets, never splitting a unit."""
    chunks: list[bytes] = []
    current = b""
    for unit in units:
        if current and len(current) + len(unit) > limit:
            chunks.append(current)
            current = b""
        current += unit
    chunks.append(current)
    return chunks


@dataclass(frozen=True)
class EncodedReply:
    data_coding: int
    esm_class: int
    short_messages: tuple[bytes, ...]


def encode_reply(text: str, ref: int, default_alphabet: Alphabet = "gsm0338") -> EncodedReply:
    """A reply as one or more submit_sm bodies: GSM 03.38 when every character has a septet, else UCS-2.

    Long texts get a concatenation UDH (IE 0x00, reference ``ref & 0xFF``);
    an escape pair or a surrogate pair is never cut between two parts.
    With a Latin-1 or ASCII default alphabet, data_coding 0 still carries only
    what GSM 03.38 can show (the SMSC maps it to septets on the air), in that alphabet's bytes.
    """
    fits_default = is_gsm(text)
    if fits_default and default_alphabet != "gsm0338":
        try:
            text.encode("latin-1" if default_alphabet == "latin1" else "ascii")
        except UnicodeEncodeError:
            fits_default = False
    ucs2 = not fits_default
    units = _units(text, ucs2)
    single_limit = UCS2_SINGLE_UNITS * 2 if ucs2 else GSM_SINGLE_SEPTETS
    part_limit = UCS2_PART_UNITS * 2 if ucs2 else GSM_PART_SEPTETS
    data_coding = DC_UCS2 if ucs2 else DC_SMSC_DEFAULT

    def wire(chunk: bytes) -> bytes:
        if ucs2 or default_alphabet == "gsm0338":
            return chunk
        return gsm_decode(chunk).encode("latin-1" if default_alphabet == "latin1" else "ascii")

    if sum(len(unit) for unit in units) <= single_limit:
        return EncodedReply(data_coding, 0, (wire(b"".join(units)),))
    chunks = _chunks(units, part_limit)
    if len(chunks) > MAX_PARTS:
        raise ValueError(f"reply needs {len(chunks)} parts, more than {MAX_PARTS}")
    ref8 = ref & 0xFF
    parts = tuple(
        bytes([5, IE_CONCAT_8BIT, 3, ref8, len(chunks), seq]) + wire(chunk) for seq, chunk in enumerate(chunks, start=1)
    )
    return EncodedReply(data_coding, UDHI, parts)
