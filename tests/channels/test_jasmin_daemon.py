"""Jasmin for real: SMSC stand-in → jasmind → our /webhooks/jasmin → complaint → our reply → /send → SMSC.

The gateway runs whole (inbox, worker, outbox) on SQLite and PostgreSQL; Jasmin is configured with the
``jcli`` steps of docs/channels/jasmin.md, only the SMSC's address and credentials and the gateway's URL
put in place of the page's examples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.app import Gateway, create_app
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.jasmin_rig import JasminRig
from tests.channels.smpp_rig import mo
from tests.channels.smpp_smsc import FakeSmsc
from tests.channels.sms_http_support import serve_app
from tests.support.docs import ROOT, fenced_blocks
from tests.support.e2e import complaint_records, eventually, stored_inbox, stored_replies
from tests.support.server import free_port

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "channels" / "jasmin.md"
SECRET = "rig-secret"
SENDER = "6281234500077"
SEND_PASSWORD = "CHANGE-ME-TOO"  # the Jasmin user's password, as the page writes it


def documented_jcli_steps() -> list[str]:
    [block] = [block for block in fenced_blocks(DOC) if block.info == "text jcli"]
    return [line.removeprefix("jcli : ").removeprefix("> ") for line in block.text.splitlines() if line.strip()]


def configure(rig: JasminRig, smsc: FakeSmsc, gateway_url: str) -> str:
    """Type the page's steps into jCli, with this machine's SMSC and gateway; the transcript."""
    mapping = {
        "host smsc.operator.example": "host 127.0.0.1",
        "port 2775": f"port {smsc.port}",
        "username lapor1708": f"username {smsc.system_id}",
        "password CHANGE-ME": f"password {smsc.password}",
        "url https://lapor.example.go.id/webhooks/jasmin?secret=CHANGE-ME": (
            f"url {gateway_url}/webhooks/jasmin?secret={SECRET}"
        ),
    }
    steps = documented_jcli_steps()
    for documented in mapping:
        assert documented in steps, f"docs/channels/jasmin.md no longer has the step {documented!r}"
    cli = rig.jcli()
    try:
        for step in steps:
            answer = cli.type(mapping.get(step, step))
            assert "Error" not in answer and "Unknown" not in answer, cli.transcript
    finally:
        cli.close()
    return cli.transcript


@pytest.fixture
def smsc() -> Iterator[FakeSmsc]:
    with FakeSmsc(system_id="lapor1708", password="smsc-pw") as smsc:
        yield smsc


@pytest.fixture
def jasmin(tmp_path: Path) -> Iterator[JasminRig]:
    rig = JasminRig(tmp_path / "jasmin").start()
    try:
        yield rig
    finally:
        rig.stop()


def jasmin_config(make_config: Callable[..., Config], rig: JasminRig, port: int) -> Config:
    return make_config(
        http={"port": port, "public_url": f"http://127.0.0.1:{port}"},
        channels={
            "smtp": {"enabled": False},
            "jasmin": {
                "enabled": True,
                "secret": SECRET,
                "send_url": rig.send_url,
                "username": "lapor",
                "password": SEND_PASSWORD,
            },
        },
    )


def test_an_sms_through_real_jasmin_becomes_a_complaint_and_the_ack_reaches_the_smsc(
    make_config: Callable[..., Config], store: Store, smsc: FakeSmsc, jasmin: JasminRig
) -> None:
    port = free_port()
    config = jasmin_config(make_config, jasmin, port)
    with serve_app(create_app(Gateway(config, store)), port, lifespan=True) as url:
        transcript = configure(jasmin, smsc, url)
        assert "Successfully added User [lapor]" in transcript
        smsc.wait_bound()  # `smppccm -1 operator` bound Jasmin to our SMSC
        sequence = smsc.deliver(**mo("LAPOR jalan berlubang di Jl. Merdeka 10", source_addr=SENDER))
        assert smsc.wait_response(sequence) == 0  # Jasmin took it from the SMSC
        [record] = eventually(lambda: complaint_records(store), "the complaint Jasmin posted", timeout=60)
        [submitted] = smsc.wait_submitted(1)  # the acknowledgement, through Jasmin's /send and MT route
        [reply] = eventually(lambda: stored_replies(store, status="done"), "the reply marked sent")

    assert (record["channel"], record["provider"]) == ("sms", "jasmin")
    assert record["body"] == "jalan berlubang di Jl. Merdeka 10"
    assert record["reporter"]["phone"] == "+" + SENDER
    assert submitted.destination_addr == SENDER, submitted  # digits, as Jasmin expects
    assert submitted.source_addr == "1708"
    assert record["tracking_id"] in submitted.short_message.decode("latin-1")
    assert reply.provider_message_id  # the id in Jasmin's `Success "<id>"`


def test_ucs2_from_real_jasmin_arrives_whole_and_the_reply_goes_to_digits(
    make_config: Callable[..., Config], store: Store, smsc: FakeSmsc, jasmin: JasminRig
) -> None:
    # Jasmin posts coding as the raw data_coding octet (coding=%08) and the text in `binary`.
    port = free_port()
    config = jasmin_config(make_config, jasmin, port)
    text = "Lapor: listrik padam كهرباء 😡"
    with serve_app(create_app(Gateway(config, store)), port, lifespan=True) as url:
        configure(jasmin, smsc, url)
        smsc.wait_bound()
        fields = mo("", source_addr=SENDER, data_coding=8, short_message=text.encode("utf-16-be"))
        assert smsc.wait_response(smsc.deliver(**fields)) == 0
        [record] = eventually(lambda: complaint_records(store), "the complaint Jasmin posted", timeout=60)
        [submitted] = smsc.wait_submitted(1)
    assert b"coding=%08" in stored_inbox(store)[0].raw
    assert record["body"] == "listrik padam كهرباء 😡"
    # No "+" in the submit_sm destination: Jasmin passes `to` through as it is given.
    assert submitted.destination_addr == SENDER
