"""The SMPP service bound to a fake SMSC on 127.0.0.1 (tests/channels/smpp_smsc.py), in-memory inbox and state."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from channels.base import Reply
from channels.gsm import gsm_decode, gsm_encode
from channels.smpp import parse, send
from channels.smpp.codec import DC_UCS2, UDHI, split_udh
from channels.smpp.concat import PART, STATUS_OK, STATUS_RETRY
from normalizer.errors import IgnoredMessage, ProviderError, ProviderRejected
from tests.channels.smpp_rig import SENDER, MemoryInbox, ServiceRunner, mo, running_service, settings_for
from tests.channels.smpp_smsc import FakeSmsc
from tests.support.fakes import MemoryState


def reply(text: str, key: str = "reply-1") -> Reply:
    return Reply(channel="sms", provider="smpp", to="+" + SENDER, text=text, idempotency_key=key)


def test_service_binds_as_transceiver_and_unbinds_on_stop(tmp_path: Path) -> None:
    with FakeSmsc() as smsc:
        runner = ServiceRunner(settings_for(smsc), MemoryInbox(), MemoryState(), tmp_path)
        smsc.wait_bound()
        assert smsc.binds == ["bind_transceiver"]
        runner.wait_link_up()
        runner.stop()
        smsc.wait_unbound()


def test_gsm_message_with_escape_characters_is_stored_before_the_resp(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        text = "LAPOR lampu {mati} di Jl. [Merdeka] ~ biaya €5 @ £1"
        status = rig.smsc.wait_response(rig.smsc.deliver(**mo(short_message=gsm_encode(text))))
        assert status == STATUS_OK
        [item] = rig.inbox.items  # already there when the resp arrived
        [message] = parse(item.raw, item.meta)
        assert message.text == text
        assert message.reply_to == "+" + SENDER


def test_ucs2_message_with_emoji_surrogate_pair(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        text = "LAPOR banjir 🌊 di RT 03 😭"
        sequence = rig.smsc.deliver(**mo(data_coding=8, short_message=text.encode("utf-16-be")))
        assert rig.smsc.wait_response(sequence) == STATUS_OK
        assert parse(rig.inbox.items[0].raw, {})[0].text == text


def test_message_payload_tlv_instead_of_short_message(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        text = "LAPOR " + "jalan berlubang di depan SD Negeri 3, " * 6
        sequence = rig.smsc.deliver(**mo(message_payload=gsm_encode(text)))
        assert rig.smsc.wait_response(sequence) == STATUS_OK
        assert parse(rig.inbox.items[0].raw, {})[0].text == text


def test_three_parts_out_of_order_with_a_duplicate_make_one_message(tmp_path: Path) -> None:
    words = gsm_encode("LAPOR " + "air PDAM tidak mengalir sejak kemarin pagi di Perumahan Griya Asri, " * 6)
    chunks = [words[i : i + 153] for i in range(0, len(words), 153)]
    assert len(chunks) == 3
    parts = [mo(esm_class=UDHI, short_message=bytes([5, 0, 3, 0x77, 3, n]) + c) for n, c in enumerate(chunks, 1)]
    with running_service(tmp_path) as rig:
        for part in (parts[1], parts[2], parts[1], parts[0]):
            assert rig.smsc.wait_response(rig.smsc.deliver(**part)) == STATUS_OK
        [item] = rig.inbox.items
        assert parse(item.raw, item.meta)[0].text == gsm_decode(words)
        assert rig.state.items(PART) == []


def test_sar_tlv_parts_are_merged(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        for seq, text in ((2, "dua minggu."), (1, "LAPOR Lampu PJU padam ")):
            fields = mo(
                short_message=gsm_encode(text), sar_msg_ref_num=4242, sar_total_segments=2, sar_segment_seqnum=seq
            )
            assert rig.smsc.wait_response(rig.smsc.deliver(**fields)) == STATUS_OK
        [item] = rig.inbox.items
        assert parse(item.raw, item.meta)[0].text == "LAPOR Lampu PJU padam dua minggu."


def test_delivery_receipt_makes_no_complaint(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        receipt = b"id:SMSC000001 sub:001 dlvrd:001 submit date:2611251530 done date:2611251531 stat:DELIVRD err:000"
        status = rig.smsc.wait_response(rig.smsc.deliver(**mo(esm_class=0x04, short_message=receipt)))
        assert status == STATUS_OK
        [item] = rig.inbox.items
        with pytest.raises(IgnoredMessage, match="delivery receipt"):
            parse(item.raw, item.meta)


def test_resp_status_is_retry_when_the_store_is_down_and_ok_on_redelivery(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        rig.inbox.down = True
        fields = mo(short_message=gsm_encode("LAPOR sampah belum diangkut"))
        assert rig.smsc.wait_response(rig.smsc.deliver(**fields)) == STATUS_RETRY == 0x64
        assert rig.inbox.items == []
        rig.inbox.down = False
        assert rig.smsc.wait_response(rig.smsc.deliver(**fields)) == STATUS_OK
        assert len(rig.inbox.items) == 1


def test_dropped_link_is_rebound_and_messages_flow_again(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        rig.smsc.drop_link()
        rig.smsc.wait_bound(2)
        rig.runner.wait_link_up()
        assert rig.smsc.binds == ["bind_transceiver", "bind_transceiver"]
        sequence = rig.smsc.deliver(**mo(short_message=gsm_encode("LAPOR setelah putus")))
        assert rig.smsc.wait_response(sequence) == STATUS_OK
        assert parse(rig.inbox.items[0].raw, {})[0].text == "LAPOR setelah putus"


def test_smsc_down_at_start_is_retried_until_it_comes_up(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on, yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FakeSmsc() as elsewhere:
        settings = settings_for(elsewhere, port=port)
    runner = ServiceRunner(settings, MemoryInbox(), MemoryState(), tmp_path)
    try:
        with capture_logs() as logs:
            runner.call(_until(lambda: any(e["event"] == "smpp.link_lost" for e in logs)))
        assert not any(e.get("was_bound") for e in logs)
        with FakeSmsc(port=port) as smsc:
            smsc.wait_bound()
            runner.wait_link_up()
    finally:
        runner.stop()


async def _until(ready: Callable[[], bool]) -> None:
    while not ready():
        await asyncio.sleep(0.02)


def test_quiet_link_is_kept_with_enquire_link(tmp_path: Path) -> None:
    with running_service(tmp_path, enquire_link_s=0.1) as rig:
        rig.smsc.wait_enquire_links(3)
        assert rig.smsc.binds == ["bind_transceiver"]


def test_smsc_that_stops_answering_enquire_link_is_left_and_rebound(tmp_path: Path) -> None:
    with running_service(tmp_path, enquire_link_s=0.1) as rig:
        rig.smsc.mute = True
        rig.smsc.wait_closed_sessions(1)  # the ESME gave up on the silent link
        rig.smsc.mute = False
        rig.smsc.wait_bound(2)


def test_wrong_password_is_refused_and_retried(tmp_path: Path) -> None:
    with running_service(tmp_path, wait_bound=False, password="salah") as rig:
        rig.smsc.wait_refused_binds(2)  # refused, backed off, tried again
        assert rig.smsc.binds == []


def test_concat_timeout_stores_the_parts_that_came_marked_incomplete(tmp_path: Path) -> None:
    with running_service(tmp_path, concat_timeout_s=0.3) as rig:
        fields = mo(esm_class=UDHI, short_message=bytes([5, 0, 3, 9, 2, 1]) + gsm_encode("LAPOR pohon tumbang di "))
        assert rig.smsc.wait_response(rig.smsc.deliver(**fields)) == STATUS_OK
        [item] = rig.inbox.wait_for(1)
        [message] = parse(item.raw, item.meta)
        assert message.extra["incomplete"] is True
        assert message.text == "LAPOR pohon tumbang di  [bagian 2/2 tidak diterima]"


def test_long_ucs2_reply_is_submitted_in_parts_with_udh(tmp_path: Path) -> None:
    text = "Laporan Anda diterima 🙏. No. LPR-7K3Q9X. Cek status: kirim STATUS LPR-7K3Q9X. " * 2
    with running_service(tmp_path) as rig:
        sent = rig.runner.call(send(reply(text), rig.settings, rig.runner.ctx.http))
        submitted = rig.smsc.wait_submitted(3)
        assert sent.provider_message_id == submitted[0].message_id
        assert {(s.data_coding, s.esm_class, s.registered_delivery) for s in submitted} == {(DC_UCS2, UDHI, 1)}
        assert {(s.source_addr, s.destination_addr, s.dest_addr_ton) for s in submitted} == {("1708", SENDER, 1)}
        udhs = [split_udh(s.short_message)[0] for s in submitted]
        assert [udh[4:] for udh in udhs] == [b"\x03\x01", b"\x03\x02", b"\x03\x03"]
        assert len({udh[3] for udh in udhs}) == 1
        assert "".join(split_udh(s.short_message)[1].decode("utf-16-be") for s in submitted) == text


def test_short_gsm_reply_is_one_submit_sm(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        rig.runner.call(send(reply("Laporan Anda diterima. No. LPR-7K3Q9X"), rig.settings, rig.runner.ctx.http))
        [submitted] = rig.smsc.wait_submitted(1)
        assert (submitted.data_coding, submitted.esm_class) == (0, 0)
        assert gsm_decode(submitted.short_message) == "Laporan Anda diterima. No. LPR-7K3Q9X"


def test_throttled_submit_is_retryable_and_bad_destination_is_rejected(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        rig.smsc.submit_status = 0x58  # ESME_RTHROTTLED
        with pytest.raises(ProviderError):
            rig.runner.call(send(reply("halo"), rig.settings, rig.runner.ctx.http))
        rig.smsc.submit_status = 0x0B  # ESME_RINVDSTADR
        with pytest.raises(ProviderRejected):
            rig.runner.call(send(reply("halo"), rig.settings, rig.runner.ctx.http))


def test_instance_without_the_bind_sends_through_a_short_transmitter_bind() -> None:
    with FakeSmsc() as smsc:
        sent = asyncio.run(
            send(reply("Laporan Anda diterima. No. LPR-7K3Q9X"), settings_for(smsc), httpx.AsyncClient())
        )
        [submitted] = smsc.wait_submitted(1)
        smsc.wait_unbound()
        assert smsc.binds == ["bind_transmitter"]
        assert sent.provider_message_id == submitted.message_id
        assert gsm_decode(submitted.short_message) == "Laporan Anda diterima. No. LPR-7K3Q9X"


def test_concurrent_replies_without_the_bind_use_one_transmitter_bind_at_a_time() -> None:
    async def three(settings: Any) -> list[Any]:
        async with httpx.AsyncClient() as http:
            return await asyncio.gather(*(send(reply(f"balasan {n}", key=f"r{n}"), settings, http) for n in range(3)))

    with FakeSmsc() as smsc:
        sent = asyncio.run(three(settings_for(smsc)))
        smsc.wait_submitted(3)
        smsc.wait_unbound(3)
        assert [event for event in smsc.events if event != "closed"] == ["bind", "unbind"] * 3
        assert sorted(s.provider_message_id for s in sent) == sorted(s.message_id for s in smsc.submitted)


def test_send_with_the_smsc_unreachable_is_retryable() -> None:
    with FakeSmsc() as smsc:
        settings = settings_for(smsc)
    with pytest.raises(ProviderError, match="could not submit"):
        asyncio.run(send(reply("halo"), settings, httpx.AsyncClient()))


def test_mo_message_in_data_sm_is_stored_and_answered_with_data_sm_resp(tmp_path: Path) -> None:
    with running_service(tmp_path) as rig:
        text = "LAPOR lewat data_sm: jalan rusak"
        sequence = rig.smsc.deliver("data_sm", **mo(message_payload=gsm_encode(text)))
        assert rig.smsc.wait_response(sequence) == STATUS_OK
        assert parse(rig.inbox.items[0].raw, {})[0].text == text
