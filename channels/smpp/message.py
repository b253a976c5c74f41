"""A ``deliver_sm`` as data, and the raw document the inbox keeps for an SMPP message.

The inbox row of an SMPP message is a small JSON document holding the hex of
every ``deliver_sm`` PDU it was made of (one, or the parts of a concatenated
message), plus the few facts the edge knew and the PDUs do not say (what
data_coding 0 meant on the bind, when it was first seen, whether parts were
missing). ``parse`` decodes the PDUs again from that document, so it stays
pure and a replay after a decoding fix reads the original bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smpplib import smpp

from channels.base import Receipt
from channels.smpp.codec import UDHI, Alphabet, Concat, concat_from_udh, decode_text, split_udh
from normalizer.errors import IgnoredMessage, PayloadError
from normalizer.phone import to_e164
from normalizer.types import ChannelMessage

PROVIDER = "smpp"
DOC_VERSION = 1
DELIVER_SM = 0x00000005
DATA_SM = 0x00000103

# esm_class bits 2-5: message type. 0x04 SMSC delivery receipt, 0x08 SME delivery
# ack, 0x10 SME manual/user ack, 0x20 intermediate delivery notification.
MESSAGE_TYPE_MASK = 0x3C
RECEIPT_TYPES = {
    0x04: "delivery receipt",
    0x08: "SME delivery ack",
    0x10: "SME user ack",
    0x20: "intermediate notification",
}


class _ParseOnly:
    """smpplib's PDU classes want a client for sequence numbers; parsing reads them from the header."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


def parse_pdu(raw_pdu: bytes) -> Any:
    """Any PDU's bytes as smpplib's command object (unknown TLVs skipped, as SMPP 3.4 asks)."""
    return smpp.parse_pdu(raw_pdu, client=_ParseOnly(), allow_unknown_opt_params=True)


def _text_field(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class DeliverSm:
    """What a deliver_sm says, as far as the gateway cares."""

    sequence: int
    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    udh: bytes
    body: bytes  # short_message (or message_payload) without the UDH
    concat: Concat | None
    receipted_message_id: str | None
    message_state: int | None

    @property
    def message_type(self) -> int:
        return self.esm_class & MESSAGE_TYPE_MASK

    @property
    def is_receipt(self) -> bool:
        return self.message_type != 0

    def content_digest(self) -> str:
        """What a redelivery repeats: addresses, coding, bytes and place in a concatenation.

        Deliberately not the sequence number or other TLVs: an SMSC that re-sends
        after a lost resp gives the PDU a new sequence number (always so after a rebind).
        """
        place = f"{self.concat.ref_bits}/{self.concat.ref}/{self.concat.total}/{self.concat.seq}" if self.concat else ""
        material = "|".join(
            (self.source_addr, self.destination_addr, str(self.data_coding), place, (self.udh + self.body).hex())
        )
        return hashlib.sha256(material.encode()).hexdigest()


def decode_deliver_sm(raw_pdu: bytes) -> DeliverSm:
    """A deliver_sm PDU's bytes as a ``DeliverSm``; ``PayloadError`` when they are not one."""
    try:
        pdu = parse_pdu(raw_pdu)
    except Exception as exc:  # smpplib raises struct errors, KeyErrors, its own types
        raise PayloadError(f"smpp: undecodable PDU ({type(exc).__name__}: {exc})") from exc
    if pdu is None or pdu.command not in ("deliver_sm", "data_sm"):
        raise PayloadError(f"smpp: expected deliver_sm or data_sm, got {getattr(pdu, 'command', None)}")
    # data_sm (some SMSCs deliver MO with it) has no short_message: its text is in message_payload.
    short_message = getattr(pdu, "short_message", None) or b""
    sm_length = getattr(pdu, "sm_length", 0) if pdu.command == "deliver_sm" else len(short_message)
    if pdu.esm_class is None or pdu.data_coding is None or sm_length is None or len(short_message) != sm_length:
        raise PayloadError(f"smpp: truncated {pdu.command} (mandatory fields missing)")
    esm_class = int(pdu.esm_class)
    message = bytes(short_message) or bytes(pdu.message_payload or b"")
    udh, body = b"", message
    concat: Concat | None = None
    if esm_class & UDHI:
        try:
            udh, body = split_udh(message)
            concat = concat_from_udh(udh)
        except ValueError as exc:
            raise PayloadError(f"smpp: broken user data header ({exc})") from exc
    if concat is None and pdu.sar_msg_ref_num is not None and pdu.sar_total_segments:
        concat = Concat(
            ref=int(pdu.sar_msg_ref_num),
            total=int(pdu.sar_total_segments),
            seq=int(pdu.sar_segment_seqnum or 0),
            ref_bits=0,
        )
    if concat is not None and (concat.total < 2 or not 1 <= concat.seq <= concat.total):
        concat = None  # "part 1 of 1" or a nonsense place: treat it as a whole message
    receipted = _text_field(pdu.receipted_message_id) or None
    return DeliverSm(
        sequence=int(pdu.sequence),
        source_addr=_text_field(pdu.source_addr),
        destination_addr=_text_field(pdu.destination_addr),
        esm_class=esm_class,
        data_coding=int(pdu.data_coding or 0),
        udh=udh,
        body=body,
        concat=concat,
        receipted_message_id=receipted,
        message_state=None if pdu.message_state is None else int(pdu.message_state),
    )


def command_id(raw_pdu: bytes) -> int:
    return int.from_bytes(raw_pdu[4:8], "big")


def sequence_number(raw_pdu: bytes) -> int:
    return int.from_bytes(raw_pdu[12:16], "big")


def message_id(digest: str, source_addr: str, first_seen: float) -> str:
    """The inbox key of an SMPP message: sender, content digest, and when it was first seen.

    SMPP gives a mobile-originated message no id of its own. The content digest
    makes a redelivery land on the same row; the first-seen second (remembered
    in state for ``concat.DEDUP_WINDOW_S``) keeps two genuinely separate but
    identical texts (``STATUS LPR-…`` asked again hours later) apart.
    """
    return f"{source_addr}:{digest[:20]}:{int(first_seen)}"


@dataclass(frozen=True)
class RawDocument:
    """The inbox row of one SMPP message (one deliver_sm, or all parts of a concatenated one)."""

    external_id: str
    default_alphabet: Alphabet
    first_seen: float
    parts: tuple[tuple[int, bytes], ...]  # (place in the message, deliver_sm PDU), in order
    total: int
    source_addr: str
    destination_addr: str

    @property
    def missing(self) -> list[int]:
        present = {seq for seq, _ in self.parts}
        return [seq for seq in range(1, self.total + 1) if seq not in present]

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "v": DOC_VERSION,
            "external_id": self.external_id,
            "default_alphabet": self.default_alphabet,
            "first_seen": datetime.fromtimestamp(self.first_seen, UTC).isoformat(),
            "source_addr": self.source_addr,
            "destination_addr": self.destination_addr,
            "total": self.total,
            "incomplete": bool(self.missing),
            "parts": [{"seq": seq, "pdu": pdu.hex()} for seq, pdu in self.parts],
        }
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RawDocument:
        try:
            doc = json.loads(raw)
            return cls(
                external_id=str(doc["external_id"]),
                default_alphabet=doc.get("default_alphabet", "gsm0338"),
                first_seen=datetime.fromisoformat(doc["first_seen"]).timestamp(),
                parts=tuple((int(part["seq"]), bytes.fromhex(part["pdu"])) for part in doc["parts"]),
                total=int(doc["total"]),
                source_addr=str(doc.get("source_addr", "")),
                destination_addr=str(doc.get("destination_addr", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"smpp: not an SMPP inbox document ({exc})") from exc

    def meta(self) -> Mapping[str, Any]:
        return {"incomplete": bool(self.missing), "parts": self.total, "missing": self.missing}


def group_digest(pdus: Sequence[bytes]) -> str:
    """One digest over the contents of all PDUs of a message, in their order."""
    return hashlib.sha256("".join(decode_deliver_sm(pdu).content_digest() for pdu in pdus).encode()).hexdigest()


def _missing_marker(seq: int, total: int) -> str:
    # Staff read the body: say in their language that a part never came.
    return f"[bagian {seq}/{total} tidak diterima]"


def _text_of(doc: RawDocument, decoded: Mapping[int, DeliverSm]) -> str:
    """The parts' bodies in order; consecutive parts with one data_coding are joined before
    decoding, so an escape pair or a surrogate pair cut between two parts still reads right."""
    pieces: list[str] = []
    run: list[DeliverSm] = []

    def flush() -> None:
        if run:
            text = decode_text(b"".join(part.body for part in run), run[0].data_coding, doc.default_alphabet)
            pieces.append(text or "")
            run.clear()

    for seq in range(1, doc.total + 1):
        part = decoded.get(seq)
        if part is None:
            flush()
            pieces.append(_missing_marker(seq, doc.total))
        else:
            if run and run[0].data_coding != part.data_coding:
                flush()
            run.append(part)
    flush()
    return " ".join(piece for piece in pieces if piece) if doc.missing else "".join(pieces)


def _decoded_parts(raw: bytes) -> tuple[RawDocument, dict[int, DeliverSm]]:
    doc = RawDocument.from_bytes(raw)
    return doc, {seq: decode_deliver_sm(pdu) for seq, pdu in doc.parts}


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    """An SMPP inbox document as the citizen's message; receipts are ignored, not complaints."""
    doc, decoded = _decoded_parts(raw)
    for part in decoded.values():
        if part.is_receipt:
            raise IgnoredMessage(f"smpp: {RECEIPT_TYPES.get(part.message_type, 'not a message')}")
    extra: dict[str, Any] = {}
    if doc.missing:
        extra.update(incomplete=True, missing_parts=doc.missing)
    return [
        ChannelMessage(
            channel="sms",
            provider=PROVIDER,
            external_id=doc.external_id,
            text=_text_of(doc, decoded),
            sender_phone=doc.source_addr or None,
            reply_to=to_e164(doc.source_addr) or doc.source_addr or None,
            extra=extra,
        )
    ]


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    return RawDocument.from_bytes(raw).external_id


# Receipt text, SMPP 3.4 Appendix B: "id:IIII sub:SSS dlvrd:DDD submit date:… done date:… stat:DDDDDDD err:E text:…"
_RECEIPT_FIELD = re.compile(r"\b(id|stat|err):(\S*)", re.IGNORECASE)
_RECEIPT_STATUS = {
    "DELIVRD": "delivered",
    "ACCEPTD": "sent",
    "ENROUTE": "sent",
    "EXPIRED": "failed",
    "DELETED": "failed",
    "UNDELIV": "failed",
    "REJECTD": "failed",
}
# message_state TLV values (SMPP 3.4 §5.2.28) to the same words.
_MESSAGE_STATE = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD", 8: "REJECTD"}


def receipts(raw: bytes, meta: Mapping[str, Any]) -> list[Receipt]:
    """Delivery receipts for submit_sm we sent, keyed by the message_id of its submit_sm_resp."""
    _, decoded = _decoded_parts(raw)
    found: list[Receipt] = []
    for part in decoded.values():
        if part.message_type != 0x04:
            continue
        fields = {key.lower(): value for key, value in _RECEIPT_FIELD.findall(part.body.decode("latin-1"))}
        message_ref = part.receipted_message_id or fields.get("id")
        state = _MESSAGE_STATE.get(part.message_state or 0) or fields.get("stat", "").upper()
        if not message_ref:
            continue
        status = _RECEIPT_STATUS.get(state, "unknown")
        error = None if status != "failed" else f"{state} err:{fields.get('err', '')}"
        found.append(Receipt(provider_message_id=message_ref, status=status, error=error))
    return found
