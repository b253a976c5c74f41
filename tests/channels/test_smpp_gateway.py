"""SMPP through the real gateway (SQLite and PostgreSQL): fake SMSC → bind → inbox → worker → complaint,
and the acknowledgement back to the SMSC as submit_sm through the same bind."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from channels.smpp.codec import UDHI, gsm_decode, gsm_encode
from channels.smpp.concat import STATUS_OK
from gateway.config import Config
from sinks.store.db import Store
from sinks.store.models import ChannelState
from tests.channels.smpp_rig import SENDER, mo, smpp_block
from tests.channels.smpp_smsc import FakeSmsc, Submitted
from tests.support.e2e import api_complaints, eventually, stored_inbox, stored_outbox


def smpp_state(store: Store, prefix: str) -> list[str]:
    with store.read() as session:
        rows = session.execute(select(ChannelState)).scalars()
        return [row.key for row in rows if row.key.startswith(prefix)]


def text_of(submitted: Submitted) -> str:
    return gsm_decode(submitted.short_message)


@pytest.fixture
def smsc() -> Iterator[FakeSmsc]:
    with FakeSmsc() as server:
        yield server


@pytest.fixture
def smpp_config(make_config: Callable[..., Config], smsc: FakeSmsc) -> Config:
    block = smpp_block(smsc, concat_timeout_s=0.5)
    # SMTP is on by default; two gateways in one test would fight over its port.
    return make_config(channels={"smpp": block, "smtp": {"enabled": False}})


def test_sms_over_smpp_becomes_a_complaint_and_the_ack_a_submit_sm(
    smpp_config: Config,
    running_client: Callable[[Config], TestClient],
    store: Store,
    agent_token: str,
    smsc: FakeSmsc,
) -> None:
    with running_client(smpp_config) as client:
        smsc.wait_bound()
        status = smsc.wait_response(smsc.deliver(**mo("LAPOR jalan {berlubang} di Jl. Merdeka 10, bahaya €")))
        assert status == STATUS_OK
        assert len(stored_inbox(store)) == 1  # committed before the deliver_sm_resp went out
        [complaint] = eventually(lambda: api_complaints(client, agent_token), "the complaint")
        [ack] = smsc.wait_submitted(1)
        [reply] = eventually(lambda: stored_outbox(store, status="done"), "the reply marked sent")

        # The SMSC's receipt for our ack updates the reply's delivery status and makes no complaint.
        receipt = f"id:{ack.message_id} sub:001 dlvrd:001 submit date:2611251530 done date:2611251531 stat:DELIVRD"
        smsc.wait_response(smsc.deliver(**mo("", esm_class=0x04, short_message=receipt.encode())))
        eventually(lambda: stored_outbox(store)[0].delivery_status == "delivered", "the delivery receipt applied")
        assert len(api_complaints(client, agent_token)) == 1

    assert (complaint["channel"], complaint["provider"]) == ("sms", "smpp")
    assert complaint["body"] == "jalan {berlubang} di Jl. Merdeka 10, bahaya €"
    assert complaint["reporter"]["phone"] == "+" + SENDER
    tracking_id = complaint["tracking_id"]
    assert (ack.source_addr, ack.destination_addr, ack.dest_addr_ton) == ("1708", SENDER, 1)
    assert text_of(ack) == f"Laporan Anda diterima. No. {tracking_id}. Cek status: kirim STATUS {tracking_id}"
    assert reply.provider_message_id == ack.message_id
    assert [row.status for row in stored_inbox(store)] == ["done", "ignored"]


def test_concatenated_parts_wait_in_the_store_and_make_one_complaint(
    smpp_config: Config,
    running_client: Callable[[Config], TestClient],
    store: Store,
    agent_token: str,
    smsc: FakeSmsc,
) -> None:
    septets = gsm_encode("LAPOR " + "lampu penerangan jalan di Gang Mawar padam sudah seminggu, " * 6)
    chunks = [septets[i : i + 153] for i in range(0, len(septets), 153)]
    parts = [mo("", esm_class=UDHI, short_message=bytes([5, 0, 3, 0x31, 3, n]) + c) for n, c in enumerate(chunks, 1)]
    with running_client(smpp_config) as client:
        smsc.wait_bound()
        for part in (parts[2], parts[0]):
            assert smsc.wait_response(smsc.deliver(**part)) == STATUS_OK
        assert len(smpp_state(store, "smpp:part:")) == 2  # acked parts are durable before the message is whole
        for part in (parts[0], parts[1]):
            assert smsc.wait_response(smsc.deliver(**part)) == STATUS_OK
        [complaint] = eventually(lambda: api_complaints(client, agent_token), "the complaint")
        smsc.wait_submitted(1)
    assert complaint["body"] == gsm_decode(septets)[len("LAPOR ") :].strip()
    assert smpp_state(store, "smpp:part:") == []
    assert len(stored_inbox(store)) == 1


def test_parts_that_never_complete_are_stored_incomplete_after_the_timeout(
    smpp_config: Config,
    running_client: Callable[[Config], TestClient],
    agent_token: str,
    smsc: FakeSmsc,
) -> None:
    first = mo("", esm_class=UDHI, short_message=bytes([5, 0, 3, 0x44, 2, 1]) + gsm_encode("LAPOR pohon tumbang"))
    with running_client(smpp_config) as client:
        smsc.wait_bound()
        assert smsc.wait_response(smsc.deliver(**first)) == STATUS_OK
        [complaint] = eventually(lambda: api_complaints(client, agent_token), "the incomplete complaint")
    assert complaint["body"] == "pohon tumbang [bagian 2/2 tidak diterima]"


def test_redelivered_deliver_sm_makes_one_complaint_and_status_query_makes_none(
    smpp_config: Config,
    running_client: Callable[[Config], TestClient],
    agent_token: str,
    smsc: FakeSmsc,
) -> None:
    with running_client(smpp_config) as client:
        smsc.wait_bound()
        for _ in range(3):  # the SMSC re-sends, each time with a new sequence number
            assert smsc.wait_response(smsc.deliver(**mo("Lapor: sampah menumpuk di pasar"))) == STATUS_OK
        [complaint] = eventually(lambda: api_complaints(client, agent_token), "the complaint")
        smsc.wait_submitted(1)
        tracking_id = complaint["tracking_id"]
        assert smsc.wait_response(smsc.deliver(**mo(f"status {tracking_id.lower()}"))) == STATUS_OK
        status_reply = smsc.wait_submitted(2)[1]
        assert len(api_complaints(client, agent_token)) == 1
    assert text_of(status_reply).startswith(f"Status laporan {tracking_id}: ")


def test_only_one_gateway_holds_the_bind_and_another_takes_over(
    smpp_config: Config,
    running_client: Callable[[Config], TestClient],
    agent_token: str,
    smsc: FakeSmsc,
) -> None:
    first = running_client(smpp_config)
    with first:
        smsc.wait_bound()
        second = running_client(smpp_config)
        second.__enter__()  # waits for the lock the first one holds
    try:
        # The first holder stopped (and unbound); only then did the other instance bind.
        smsc.wait_bound(2)
        assert smsc.events[:2] == ["bind", "unbind"]
        assert smsc.events.count("bind") == 2
        assert smsc.wait_response(smsc.deliver(**mo("LAPOR setelah pindah instance"))) == STATUS_OK
        eventually(lambda: api_complaints(second, agent_token), "the complaint on the second instance")
    finally:
        second.__exit__(None, None, None)
