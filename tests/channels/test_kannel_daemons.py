"""Kannel for real: fakesmsc → bearerbox → smsbox → our get-url, and our sendsms replies → bearerbox → fakesmsc."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channels import kannel
from channels.base import InboxItem, Reply
from tests.channels.kannel_rig import SENDSMS_PASSWORD, SENDSMS_USER, KannelRig, running_behind_webhook
from tests.channels.sms_http_support import MemoryInbox, run

pytestmark = pytest.mark.slow

SECRET = "rig-secret"
GET_URL_QUERY = "secret={secret}&id=%I&from=%p&to=%P&ts=%T&coding=%c&charset=%C&text=%a"


def get_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/webhooks/kannel?" + GET_URL_QUERY.format(secret=SECRET)


@pytest.fixture(scope="module")
def rig_and_inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KannelRig, MemoryInbox]]:
    workdir = tmp_path_factory.mktemp("kannel")
    with running_behind_webhook(lambda port: KannelRig(workdir, get_url(port)), SECRET) as running:
        yield running


def wait_for_item(inbox: MemoryInbox, sender_digits: str, timeout: float = 30.0) -> InboxItem:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in inbox.items:
            if f"from={sender_digits}".encode() in item.raw:
                return item
        time.sleep(0.05)
    raise AssertionError(f"smsbox never called the get-url for {sender_digits}")


def test_gsm_text_from_the_smsc_arrives_decoded(rig_and_inbox: tuple[KannelRig, MemoryInbox]) -> None:
    rig, inbox = rig_and_inbox
    rig.inject("6281234500001", "1708", "LAPOR jalan rusak @ Jl. Merdeka no 5")
    item = wait_for_item(inbox, "6281234500001")
    assert b"secret" not in item.raw
    [message] = kannel.parse(item.raw, {})
    assert message.text == "LAPOR jalan rusak @ Jl. Merdeka no 5"
    assert (message.sender_phone, message.reply_to, message.extra) == (
        "+6281234500001",
        "+6281234500001",
        {"our_number": "1708"},
    )
    assert item.external_id == message.external_id != ""


def test_ucs2_text_with_an_emoji_arrives_decoded(rig_and_inbox: tuple[KannelRig, MemoryInbox]) -> None:
    rig, inbox = rig_and_inbox
    rig.inject("6281234500002", "1708", "Lapor: pungli di kelurahan 😡 Rp 50.000", ucs2=True)
    item = wait_for_item(inbox, "6281234500002")
    assert b"coding=2" in item.raw and b"charset=UTF-16BE" in item.raw
    [message] = kannel.parse(item.raw, {})
    assert message.text == "Lapor: pungli di kelurahan 😡 Rp 50.000"


def test_replies_through_sendsms_reach_the_smsc(rig_and_inbox: tuple[KannelRig, MemoryInbox], tmp_path: Path) -> None:
    rig, _ = rig_and_inbox
    rig.inject("6281234500003", "1708", "LAPOR sampah")  # a connected SMSC for bearerbox to route the replies to
    settings = kannel.KannelSettings(
        enabled=True, secret=SECRET, sendsms_url=rig.sendsms_url, username=SENDSMS_USER, password=SENDSMS_PASSWORD
    )
    already = len(rig.mt_messages())
    texts = ["Laporan Anda diterima. No. LPR-7K3Q9X. Cek status: kirim STATUS LPR-7K3Q9X", "Terima kasih 🙏 LPR-7K3Q9X"]

    async def go() -> None:
        async with httpx.AsyncClient() as http:
            for text in texts:
                reply = Reply(
                    channel="sms",
                    provider="kannel",
                    to="+6281234500003",
                    text=text,
                    idempotency_key=f"reply:{text[:8]}",
                    extra={"our_number": "1708"},
                )
                await kannel.send(reply, settings, http)

    run(go())
    received = rig.wait_for_mt(already + 2)[already:]
    assert sorted((mt.receiver, mt.sender, mt.kind, mt.text) for mt in received) == sorted(
        [
            ("+6281234500003", "1708", "text", texts[0]),
            ("+6281234500003", "1708", "ucs-2", texts[1]),
        ]
    )


def test_store_failure_answers_503_and_kannel_retries_the_same_message(
    rig_and_inbox: tuple[KannelRig, MemoryInbox],
) -> None:
    rig, inbox = rig_and_inbox
    inbox.fail_with, inbox.failures_left = RuntimeError("database is down"), 1
    calls_before = inbox.calls
    rig.inject("6281234500004", "1708", "LAPOR banjir di RW 05")
    item = wait_for_item(inbox, "6281234500004")
    assert inbox.calls == calls_before + 2  # refused once, then smsbox's retry was stored
    assert kannel.parse(item.raw, {})[0].text == "LAPOR banjir di RW 05"


def test_long_reply_goes_out_as_a_concatenated_sms(rig_and_inbox: tuple[KannelRig, MemoryInbox]) -> None:
    rig, _ = rig_and_inbox
    rig.inject("6281234500005", "1708", "LAPOR x")
    settings = kannel.KannelSettings(
        enabled=True, secret=SECRET, sendsms_url=rig.sendsms_url, username=SENDSMS_USER, password=SENDSMS_PASSWORD
    )
    text = "Status laporan LPR-7K3Q9X: sedang ditindaklanjuti oleh Dinas PUPR. " * 4
    already = len(rig.mt_messages())

    async def go() -> None:
        async with httpx.AsyncClient() as http:
            reply = Reply(
                channel="sms",
                provider="kannel",
                to="+6281234500005",
                text=text,
                idempotency_key="long",
                extra={"our_number": "1708"},
            )
            await kannel.send(reply, settings, http)

    run(go())
    parts = rig.wait_for_mt(already + 2)[already:]
    assert [part.kind for part in parts] == ["udh", "udh"]
    # UDH: length 5, IE 0x00 (concatenation, 8-bit reference) of 3 bytes: reference, total parts, part number.
    assert [part.udh[:3] for part in parts] == [b"\x05\x00\x03"] * 2
    assert parts[0].udh[3] == parts[1].udh[3]
    assert [(part.udh[4], part.udh[5]) for part in parts] == [(2, 1), (2, 2)]
    assert "".join(part.text for part in parts) == text
