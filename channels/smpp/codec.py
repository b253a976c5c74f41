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

from channels.gsm import (
    DC_BINARY,
    DC_BINARY_8BIT,
    DC_CYRILLIC,
    DC_HEBREW,
    DC_IA5,
    DC_LATIN1,
    DC_SMSC_DEFAULT,
    DC_UCS2,
    GSM_ENCODE,
    Alphabet,
    fits_default_alphabet,
    gsm_decode,
)
from channels.gsm import decode_data_coding as decode_text  # re-exported under the name SMPP code reads
from channels.gsm import gsm_encode as gsm_encode  # re-exported: SMPP tests and rigs read septets through the codec

__all__ = [
    "DC_BINARY",
    "DC_BINARY_8BIT",
    "DC_CYRILLIC",
    "DC_HEBREW",
    "DC_IA5",
    "DC_LATIN1",
    "DC_SMSC_DEFAULT",
    "DC_UCS2",
    "UDHI",
    "Alphabet",
    "Concat",
    "EncodedReply",
    "concat_from_udh",
    "decode_text",
    "encode_reply",
    "gsm_decode",
    "gsm_encode",
    "split_udh",
]

UDHI = 0x40  # esm_class bit: short_message starts with a User Data Header

# One SMS carries 140 octets; a concatenation UDH (IE 0x00) takes 6 of them.
GSM_SINGLE_SEPTETS = 160
GSM_PART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67
MAX_PARTS = 255

IE_CONCAT_8BIT = 0x00
IE_CONCAT_16BIT = 0x08


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
    ucs2 = not fits_default_alphabet(text, default_alphabet)
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
