"""Recorded deliver_sm PDUs in, inbox document and citizen message out (tests/payloads/smpp/*.hex).

Each file holds one deliver_sm per line, in the order the SMSC sent them. The
PDUs go through the real edge (``Inbound``: state, reassembly, accept) with an
in-memory context, then the stored document through the pure ``parse``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from channels.smpp import ADAPTER, external_id, parse, receipts
from channels.smpp.concat import PART, STATUS_OK, STATUS_RETRY, Inbound
from channels.smpp.message import RawDocument
from normalizer.errors import IgnoredMessage, PayloadError
from tests.channels.smpp_rig import MemoryInbox, memory_context
from tests.support.fakes import MemoryState

PAYLOADS = Path(__file__).parent.parent / "payloads" / "smpp"
SENDER = "6281234567890"


def pdus(name: str) -> list[bytes]:
    lines = (PAYLOADS / name).read_text().splitlines()
    return [bytes.fromhex(line) for line in lines if line.strip() and not line.startswith("#")]


class Clock:
    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def feed(
    frames: list[bytes],
    inbox: MemoryInbox | None = None,
    state: MemoryState | None = None,
    clock: Clock | None = None,
    alphabet: Any = "gsm0338",
) -> tuple[list[int], MemoryInbox, MemoryState]:
    inbox = inbox or MemoryInbox()
    state = state or MemoryState()
    runner_ctx = memory_context(inbox, state, Path("."))
    edge = Inbound(runner_ctx, alphabet, concat_timeout_s=300, clock=clock or Clock())

    async def run() -> list[int]:
        return [await edge.handle(frame) for frame in frames]

    return asyncio.run(run()), inbox, state


CASES = [
    ("gsm_escape.hex", "LAPOR jalan {rusak} [RT 05] ~ ^ | \\ bayar €5 @ loket £1"),
    ("ucs2_emoji.hex", "LAPOR lampu jalan mati 😡🙏 di Desa Sukamaju"),
    ("latin1.hex", "Lapor: kafé di pasar tutup, harga naïk"),
    (
        "message_payload.hex",
        "LAPOR Saluran air di Jalan Merdeka RT 05 RW 02 Kelurahan Sukamaju sudah tersumbat sejak dua minggu, "
        "setiap hujan air meluap ke rumah warga dan jalan tidak bisa dilewati motor. Mohon segera ditindaklanjuti.",
    ),
    (
        "concat_udh8_out_of_order.hex",
        "LAPOR Saluran air di Jalan Merdeka RT 05 RW 02 Kelurahan Sukamaju sudah tersumbat sejak dua minggu, "
        "setiap hujan air meluap ke rumah warga dan jalan tidak bisa dilewati motor. Mohon segera ditindaklanjuti. "
        "Terima kasih. Warga sudah melapor ke kelurahan tetapi belum ada tanggapan sampai hari ini, "
        "jadi kami lapor lewat 1708.",
    ),
    (
        "concat_udh16_ucs2_split_emoji.hex",
        "LAPOR Jembatan di Desa Sukamaju retak 🚧 berbahaya untuk anak sekolah, "
        "mohon diperbaiki sebelum musim hujan 🙏",
    ),
    (
        "concat_sar.hex",
        "LAPOR Sampah menumpuk di depan pasar Cikini sejak Senin, baunya sampai ke sekolah. Tolong diangkut.",
    ),
    ("binary_8bit.hex", ""),
]


@pytest.mark.parametrize(("name", "text"), CASES, ids=[name for name, _ in CASES])
def test_recorded_deliver_sm_becomes_one_message(name: str, text: str) -> None:
    statuses, inbox, state = feed(pdus(name))
    assert statuses == [STATUS_OK] * len(statuses)
    assert len(inbox.items) == 1
    item = inbox.items[0]
    assert (item.channel, item.provider, item.ignored_reason) == ("sms", "smpp", None)
    assert item.external_id == external_id(item.raw, item.meta)
    [message] = parse(item.raw, item.meta)
    assert message.text == text
    assert message.sender_phone == SENDER
    assert message.reply_to == "+" + SENDER
    assert message.external_id == item.external_id
    assert "incomplete" not in message.extra
    assert state.items(PART) == []  # parts are forgotten once the message is stored


def test_parse_is_pure_and_gives_the_same_message_on_replay() -> None:
    _, inbox, _ = feed(pdus("concat_udh8_out_of_order.hex"))
    item = inbox.items[0]
    assert parse(item.raw, {}) == parse(item.raw, item.meta)


def test_inbox_document_keeps_every_part_pdu_in_order() -> None:
    frames = pdus("concat_udh8_out_of_order.hex")
    _, inbox, _ = feed(frames)
    doc = RawDocument.from_bytes(inbox.items[0].raw)
    assert [seq for seq, _ in doc.parts] == [1, 2, 3]
    assert [pdu[16:] for _, pdu in doc.parts] == [frames[1][16:], frames[2][16:], frames[0][16:]]
    assert doc.source_addr == SENDER
    assert doc.destination_addr == "1708"


def test_duplicated_part_is_acked_and_stored_once() -> None:
    frames = pdus("concat_udh8_out_of_order.hex")
    statuses, inbox, _ = feed([*frames, frames[0], frames[1]])
    assert statuses == [STATUS_OK] * 6
    assert len(inbox.items) == 1


def test_redelivered_message_gets_the_same_external_id() -> None:
    frame = pdus("gsm_escape.hex")[0]
    clock = Clock()
    statuses, inbox, state = feed([frame], clock=clock)
    clock.now += 90  # the SMSC re-sends after a lost deliver_sm_resp
    redelivery = frame[:12] + (999).to_bytes(4, "big") + frame[16:]
    statuses, inbox, _ = feed([redelivery], inbox=inbox, state=state, clock=clock)
    assert statuses == [STATUS_OK]
    assert len(inbox.items) == 1


def test_same_text_hours_later_is_a_new_message() -> None:
    frame = pdus("gsm_escape.hex")[0]
    clock = Clock()
    _, inbox, state = feed([frame], clock=clock)
    clock.now += 6 * 3600
    _, inbox, _ = feed([frame], inbox=inbox, state=state, clock=clock)
    assert len(inbox.items) == 2
    assert inbox.items[0].external_id != inbox.items[1].external_id


def test_complete_set_sent_again_does_not_make_an_incomplete_second_message() -> None:
    frames = pdus("concat_udh8_out_of_order.hex")
    _, inbox, state = feed(frames)
    statuses, inbox, state = feed([frames[0]], inbox=inbox, state=state)  # part 3 again, after the merge
    assert statuses == [STATUS_OK]
    assert state.items(PART) == []
    assert len(inbox.items) == 1


def test_reused_reference_with_other_bytes_stores_the_waiting_message_first() -> None:
    old_part, *_ = pdus("concat_sar.hex")  # part 2 of 2, reference 777
    new_part = bytearray(old_part)
    new_part[-20] ^= 0x01  # one septet of the text differs (the sar_* TLVs are the last 16 octets)
    statuses, inbox, state = feed([old_part, bytes(new_part)])
    assert statuses == [STATUS_OK, STATUS_OK]
    [stored] = inbox.items
    assert stored.meta["missing"] == [1]
    assert len(state.items(PART)) == 1  # the new message's part waits for its sibling


def test_delivery_receipt_parses_as_ignored_and_maps_to_our_message_id() -> None:
    statuses, inbox, _ = feed(pdus("delivery_receipt.hex"))
    assert statuses == [STATUS_OK]
    item = inbox.items[0]
    with pytest.raises(IgnoredMessage, match="delivery receipt"):
        parse(item.raw, item.meta)
    [receipt] = receipts(item.raw, item.meta)
    assert (receipt.provider_message_id, receipt.status, receipt.error) == ("SMSC000001", "delivered", None)


def test_store_down_answers_retry_status_and_keeps_nothing() -> None:
    inbox = MemoryInbox(down=True)
    statuses, inbox, _ = feed(pdus("gsm_escape.hex"), inbox=inbox)
    assert statuses == [STATUS_RETRY]
    inbox.down = False
    statuses, inbox, _ = feed(pdus("gsm_escape.hex"), inbox=inbox)
    assert statuses == [STATUS_OK]
    assert len(inbox.items) == 1


def test_part_is_not_acked_when_its_state_write_fails() -> None:
    state = MemoryState()
    state.down = True
    statuses, inbox, _ = feed(pdus("concat_sar.hex")[:1], state=state)
    assert statuses == [STATUS_RETRY]
    assert inbox.items == []


def test_undecodable_deliver_sm_is_stored_for_the_failed_list() -> None:
    frame = pdus("gsm_escape.hex")[0]
    broken = frame[:16] + b"\xff" * 3  # a header, then no valid mandatory fields
    broken = len(broken).to_bytes(4, "big") + broken[4:]
    statuses, inbox, _ = feed([broken])
    assert statuses == [STATUS_OK]
    with pytest.raises(PayloadError):
        parse(inbox.items[0].raw, inbox.items[0].meta)


def test_concat_timeout_stores_what_arrived_marked_incomplete() -> None:
    frames = pdus("concat_udh8_out_of_order.hex")  # parts 3, 1, 2, 1
    clock = Clock()
    inbox, state = MemoryInbox(), MemoryState()
    ctx = memory_context(inbox, state, Path("."))
    edge = Inbound(ctx, "gsm0338", concat_timeout_s=300, clock=clock)

    async def run() -> None:
        assert await edge.handle(frames[0]) == STATUS_OK  # part 3
        assert await edge.handle(frames[1]) == STATUS_OK  # part 1
        clock.now += 299
        await edge.sweep()
        assert inbox.items == []
        clock.now += 2
        await edge.sweep()

    asyncio.run(run())
    [item] = inbox.items
    assert item.meta["incomplete"] is True
    assert item.meta["missing"] == [2]
    [message] = parse(item.raw, item.meta)
    assert message.extra["incomplete"] is True
    assert message.extra["missing_parts"] == [2]
    assert message.text.startswith("LAPOR Saluran air")
    assert " [bagian 2/3 tidak diterima] " in message.text
    assert message.text.endswith(" lapor lewat 1708.")
    assert state.items(PART) == []


def test_adapter_names_the_channel_and_its_parts() -> None:
    assert (ADAPTER.name, ADAPTER.provider) == ("smpp", "smpp")
    assert ADAPTER.service is not None and ADAPTER.send is not None and ADAPTER.receipts is not None
