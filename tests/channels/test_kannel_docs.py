"""The whole kannel.conf of docs/channels/kannel.md, run with the real bearerbox and smsbox.

Only what the page says is the operator's to change is changed: the SMSC group becomes ``fakesmsc``,
the ports are free ones, the folders live in the test's directory, and the page's example addresses
(the Kannel host, the gateway hosts) become 127.0.0.1. The sendsms-user must then take replies from
127.0.0.1 and refuse the same request, with the right password, from another loopback address.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channels import kannel
from channels.base import Reply
from tests.channels.kannel_rig import KannelRig, running_behind_webhook
from tests.channels.sms_http_support import MemoryInbox, run
from tests.support.docs import fenced_blocks

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "channels" / "kannel.md"
SECRET = "CHANGE-ME"  # the get-url's secret as the page writes it
SENDSMS_PASSWORD = "CHANGE-ME-TOO"
_SMSC_GROUP = re.compile(r"^group = smsc\n(?:(?!group = ).*\n)*", re.MULTILINE)


def documented_conf() -> str:
    [conf] = [block.text for block in fenced_blocks(DOC) if block.info == "conf kannel.conf"]
    return conf


class DocumentedKannel(KannelRig):
    """The rig's daemons and fakesmsc, with the page's configuration instead of the rig's own."""

    def config(self) -> str:
        conf = documented_conf()
        assert _SMSC_GROUP.search(conf), "the page has no smsc group"
        fake = f"group = smsc\nsmsc = fake\nsmsc-id = fake\nport = {self.smsc_port}\nconnect-allow-ip = 127.0.0.1\n\n"
        conf = _SMSC_GROUP.sub(fake, conf)
        (self.workdir / "spool" / "store").mkdir(parents=True, exist_ok=True)
        mapping = {
            "admin-port = 13000": f"admin-port = {self.admin_port}",
            "smsbox-port = 13001": f"smsbox-port = {self.box_port}",
            "bearerbox-port = 13001": f"bearerbox-port = {self.box_port}",
            "sendsms-port = 13013": f"sendsms-port = {self.sendsms_port}",
            "/var/spool/kannel": str(self.workdir / "spool"),
            "/var/log/kannel": str(self.workdir),
            "sendsms-interface = 10.0.0.5": "sendsms-interface = 127.0.0.1",
            '"10.0.0.11;10.0.0.12"': '"127.0.0.1"',
            "https://lapor.example.go.id/webhooks/kannel?": self.get_url,
        }
        for documented, here in mapping.items():
            assert documented in conf, f"docs/channels/kannel.md no longer says {documented!r}"
            conf = conf.replace(documented, here)
        return conf


@pytest.fixture(scope="module")
def documented_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KannelRig, MemoryInbox]]:
    workdir = tmp_path_factory.mktemp("kannel-docs")
    with running_behind_webhook(
        lambda port: DocumentedKannel(workdir, f"http://127.0.0.1:{port}/webhooks/kannel?"), SECRET
    ) as running:
        yield running


def sendsms(rig: KannelRig, source_address: str, text: str) -> httpx.Response:
    params = {"username": "lapor", "password": SENDSMS_PASSWORD, "to": "+6281234500009", "from": "1708", "text": text}
    transport = httpx.HTTPTransport(local_address=source_address)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.get(rig.sendsms_url, params=params)


def test_the_documented_conf_brings_a_message_to_the_gateway(
    documented_rig: tuple[KannelRig, MemoryInbox],
) -> None:
    rig, inbox = documented_rig
    rig.inject("6281234500008", "1708", "LAPOR lampu jalan mati")
    deadline = time.monotonic() + 30
    while not inbox.items and time.monotonic() < deadline:
        time.sleep(0.05)
    [item] = inbox.items
    [message] = kannel.parse(item.raw, {})
    assert (message.text, message.sender_phone) == ("LAPOR lampu jalan mati", "+6281234500008")


def test_the_gateway_host_may_send_and_another_address_is_refused(
    documented_rig: tuple[KannelRig, MemoryInbox],
) -> None:
    rig, _ = documented_rig
    rig.inject("6281234500009", "1708", "LAPOR x")  # a connected SMSC for bearerbox to route to
    already = len(rig.mt_messages())
    # Our own send(), as the gateway host (127.0.0.1, the page's user-allow-ip), is queued and delivered.
    settings = kannel.KannelSettings(
        enabled=True, secret=SECRET, sendsms_url=rig.sendsms_url, username="lapor", password=SENDSMS_PASSWORD
    )

    async def reply() -> None:
        async with httpx.AsyncClient() as http:
            text = "Laporan Anda diterima. No. LPR-7K3Q9X."
            message = Reply("sms", "kannel", "+6281234500009", text, "docs-1", extra={"our_number": "1708"})
            await kannel.send(message, settings, http)

    run(reply())
    [delivered] = rig.wait_for_mt(already + 1)[already:]
    assert delivered.text == "Laporan Anda diterima. No. LPR-7K3Q9X."
    # The same request with the right password from 127.0.0.2: refused, nothing reaches the SMSC.
    refused = sendsms(rig, "127.0.0.2", "dari host lain")
    assert refused.status_code == 403, refused.text
    assert "Authorization failed" in refused.text
    allowed = sendsms(rig, "127.0.0.1", "dari gateway")
    assert allowed.status_code == 202, allowed.text
    texts = [mt.text for mt in rig.wait_for_mt(already + 2)[already:]]
    assert "dari gateway" in texts and "dari host lain" not in texts
