"""Kannel → the real gateway → Kannel: fakesmsc MO through bearerbox/smsbox becomes a complaint; the ack comes back
through sendsms to fakesmsc. Runs on SQLite and PostgreSQL against one Kannel started for the module."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from gateway.app import Gateway, create_app
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.kannel_rig import SENDSMS_PASSWORD, SENDSMS_USER, KannelRig, MtMessage
from tests.channels.sms_http_support import serve_app
from tests.support.e2e import complaint_records, eventually, stored_inbox
from tests.support.server import free_port

pytestmark = pytest.mark.slow

SECRET = "rig-secret"
_numbers = itertools.count(1)


class Rig:
    def __init__(self, kannel: KannelRig, port: int) -> None:
        self.kannel = kannel
        self.port = port  # where smsbox's get-url points: each test serves its gateway here

    def citizen(self) -> str:
        """A fresh sender for each message, so replies in fakesmsc's log are told apart across tests."""
        return f"62812777{next(_numbers):05d}"

    def replies_to(self, sender: str) -> list[MtMessage]:
        return [mt for mt in self.kannel.mt_messages() if mt.receiver == "+" + sender]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    port = free_port()
    get_url = (
        f"http://127.0.0.1:{port}/webhooks/kannel?secret={SECRET}"
        "&id=%I&from=%p&to=%P&ts=%T&coding=%c&charset=%C&text=%a"
    )
    kannel = KannelRig(tmp_path_factory.mktemp("kannel-gw"), get_url).start()
    try:
        yield Rig(kannel, port)
    finally:
        kannel.stop()


@pytest.fixture
def kannel_config(make_config: Callable[..., Config], rig: Rig) -> Config:
    return make_config(
        channels={
            "kannel": {
                "enabled": True,
                "secret": SECRET,
                "sendsms_url": rig.kannel.sendsms_url,
                "username": SENDSMS_USER,
                "password": SENDSMS_PASSWORD,
            }
        }
    )


def test_gsm_and_ucs2_sms_become_complaints_and_acks_reach_the_smsc(
    rig: Rig, kannel_config: Config, store: Store
) -> None:
    gsm_sender, ucs2_sender = rig.citizen(), rig.citizen()
    with serve_app(create_app(Gateway(kannel_config, store)), rig.port, lifespan=True):
        rig.kannel.inject(gsm_sender, "1708", "LAPOR jalan rusak @ Jl. Merdeka depan pasar")
        eventually(lambda: rig.replies_to(gsm_sender), "the GSM ack at the SMSC")
        rig.kannel.inject(ucs2_sender, "1708", "lapor: pungli di kelurahan 😡 Rp 50.000", ucs2=True)
        eventually(lambda: rig.replies_to(ucs2_sender), "the UCS-2 ack at the SMSC")

    by_phone = {record["reporter"]["phone"]: record for record in complaint_records(store)}
    gsm, ucs2 = by_phone["+" + gsm_sender], by_phone["+" + ucs2_sender]
    assert (gsm["channel"], gsm["provider"]) == ("sms", "kannel")
    assert gsm["body"] == "jalan rusak @ Jl. Merdeka depan pasar"
    assert ucs2["body"] == "pungli di kelurahan 😡 Rp 50.000"
    for sender, record in ((gsm_sender, gsm), (ucs2_sender, ucs2)):
        [ack] = rig.replies_to(sender)
        assert (ack.sender, ack.kind) == ("1708", "text")
        expected = "Laporan Anda diterima. No. {0}. Cek status: kirim STATUS {0}".format(record["tracking_id"])
        assert ack.text == expected
    assert all(b"secret" not in row.raw for row in stored_inbox(store))


def test_status_question_by_sms_is_answered_without_a_new_complaint(
    rig: Rig, kannel_config: Config, store: Store
) -> None:
    sender = rig.citizen()
    with serve_app(create_app(Gateway(kannel_config, store)), rig.port, lifespan=True):
        rig.kannel.inject(sender, "1708", "LAPOR lampu jalan mati di gang 3")
        eventually(lambda: rig.replies_to(sender), "the ack at the SMSC")
        tracking_id = complaint_records(store)[0]["tracking_id"]
        rig.kannel.inject(sender, "1708", f"status {tracking_id.removeprefix('LPR-').lower()}")
        eventually(lambda: len(rig.replies_to(sender)) == 2, "the status answer at the SMSC")

    assert len(complaint_records(store)) == 1
    status_answer = rig.replies_to(sender)[1].text
    assert tracking_id in status_answer and "diterima" in status_answer
