"""E-mail through the real gateway (SQLite and PostgreSQL): listener / poller → inbox → worker → complaint,
and the acknowledgement out through a relay that is a real SMTP server on loopback."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col

from channels.email.smtp import SmtpSettings
from gateway.config import Config
from sinks.store.db import Store
from sinks.store.models import InboxMessage
from tests.channels.dovecot_rig import running_dovecot
from tests.channels.email_rig import CapturingRelay, running_relay
from tests.support.e2e import api_complaints, eventually, stored_outbox
from tests.support.server import free_port

PAYLOADS = Path(__file__).parent.parent / "payloads" / "email"
OUR_ADDRESS = "lapor@kota.go.id"


def deliver(port: int, message: bytes, sender: str = "budi.santoso@contoh.id") -> None:
    """Hand a mail to the gateway's listener as an MTA would (it may still be starting)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.contoh.id", timeout=10) as client:
                client.sendmail(sender, [OUR_ADDRESS], message)
                return
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the SMTP listener never started"
            time.sleep(0.05)


def smtp_port(config: Config) -> int:
    settings = config.channel("smtp")
    assert isinstance(settings, SmtpSettings)
    return settings.port


def acks(relay: CapturingRelay, count: int) -> list[EmailMessage]:
    eventually(lambda: len(relay.received) >= count, f"{count} acknowledgement(s) on the relay")
    return [message for _, _, message in relay.received]


@pytest.fixture
def relay() -> Iterator[CapturingRelay]:
    with running_relay() as server:
        yield server


def listener_block(relay: CapturingRelay, **policy: object) -> dict[str, object]:
    """``channels.smtp`` on a free port for kota.go.id, acknowledging through ``relay`` by ``policy``."""
    return {
        "port": free_port(),
        "domains": ["kota.go.id"],
        "relay": {"port": relay.port, "from_address": OUR_ADDRESS},
        **policy,
    }


@pytest.fixture
def smtp_config(make_config: Callable[..., Config], relay: CapturingRelay) -> Config:
    # These tests are about what becomes of a mail: every sender is acknowledged (the policy is tested below).
    return make_config(channels={"smtp": listener_block(relay, acknowledge_unauthenticated=True)})


def test_mail_with_attachments_becomes_a_complaint_and_an_acknowledgement(
    smtp_config: Config,
    running_client: Callable[[Config], TestClient],
    agent_token: str,
    relay: CapturingRelay,
) -> None:
    with running_client(smtp_config) as client:
        deliver(smtp_port(smtp_config), (PAYLOADS / "rfc2231_filenames.eml").read_bytes())
        [complaint] = eventually(lambda: api_complaints(client, agent_token), "the complaint")
        [ack] = acks(relay, 1)

    assert (complaint["channel"], complaint["provider"]) == ("email", "smtp")
    assert complaint["external_id"] == "<rfc2231-1@contoh.id>"
    assert complaint["subject"] == "Foto banjir"
    assert complaint["body"] == "Foto banjir terlampir."
    assert complaint["reporter"]["email"] == "dewi@contoh.id"
    assert complaint["reporter"]["name"] == "Dewi"
    names = [attachment["filename"] for attachment in complaint["attachments"]]
    assert names == ["banjir – RT 04.png", "surat permohonan warga.pdf", "foto kerusakan.jpg"]
    for attachment in complaint["attachments"]:
        stored = smtp_config.data_dir / "attachments" / attachment["sha256"][:2] / attachment["sha256"]
        assert stored.stat().st_size == attachment["size"]

    tracking_id = complaint["tracking_id"]
    assert ack["To"] == "dewi@contoh.id"
    assert ack["Subject"] == f"[{tracking_id}] Laporan Anda"
    assert ack["In-Reply-To"] == "<rfc2231-1@contoh.id>"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert tracking_id in ack.get_content()


def test_replies_by_tracking_id_or_in_reply_to_become_follow_ups(
    smtp_config: Config,
    running_client: Callable[[Config], TestClient],
    agent_token: str,
    relay: CapturingRelay,
) -> None:
    port = smtp_port(smtp_config)
    with running_client(smtp_config) as client:
        deliver(port, (PAYLOADS / "indonesian_signature.eml").read_bytes())
        [first_ack] = acks(relay, 1)
        [original] = api_complaints(client, agent_token)
        tracking_id = original["tracking_id"]

        by_subject = (
            f"From: Budi Santoso <budi.santoso@contoh.id>\r\nTo: {OUR_ADDRESS}\r\n"
            f"Subject: Re: [{tracking_id}] Jalan berlubang\r\nMessage-ID: <follow-1@contoh.id>\r\n\r\n"
            "Lubangnya makin besar.\r\n\r\nOn Mon, 2 Nov 2026 LAPOR! wrote:\r\n> Laporan Anda diterima.\r\n"
        )
        deliver(port, by_subject.encode())
        eventually(lambda: len(api_complaints(client, agent_token)) == 2, "the first follow-up")
        by_thread = (
            f"From: Budi Santoso <budi.santoso@contoh.id>\r\nTo: {OUR_ADDRESS}\r\n"
            f"Subject: Re: Jalan berlubang\r\nMessage-ID: <follow-2@contoh.id>\r\n"
            f"In-Reply-To: {first_ack['Message-ID']}\r\nReferences: {first_ack['Message-ID']}\r\n\r\n"
            "Sudah ada yang jatuh lagi.\r\n"
        )
        deliver(port, by_thread.encode())
        eventually(lambda: len(api_complaints(client, agent_token)) == 3, "the second follow-up")
        _, subject_follow_up, thread_follow_up = api_complaints(client, agent_token)
        later_acks = acks(relay, 3)[1:]

    assert subject_follow_up["parent_tracking_id"] == tracking_id
    assert subject_follow_up["body"] == "Lubangnya makin besar."
    assert thread_follow_up["parent_tracking_id"] == tracking_id
    assert thread_follow_up["body"] == "Sudah ada yang jatuh lagi."
    assert sorted(ack["In-Reply-To"] for ack in later_acks) == ["<follow-1@contoh.id>", "<follow-2@contoh.id>"]
    assert all(tracking_id in ack.get_content() for ack in later_acks)


def test_bounces_are_ignored_and_junk_fails_with_no_complaint_and_no_acknowledgement(
    smtp_config: Config,
    running_client: Callable[[Config], TestClient],
    agent_token: str,
    store: Store,
) -> None:
    port = smtp_port(smtp_config)

    def statuses() -> list[str] | None:
        with store.read() as session:
            rows = session.execute(select(InboxMessage).where(col(InboxMessage.channel) == "email")).scalars().all()
            found = [row.status for row in rows]
        return found if len(found) == 3 and all(status in ("done", "ignored", "failed") for status in found) else None

    with running_client(smtp_config) as client:
        deliver(port, (PAYLOADS / "cpython_msg_01.eml").read_bytes(), sender="")  # a bounce: null sender
        deliver(port, (PAYLOADS / "auto_reply_out_of_office.eml").read_bytes(), sender="kadis@contoh.go.id")
        deliver(port, (PAYLOADS / "not_an_email.eml").read_bytes())  # stored, then the failed list
        assert eventually(statuses, "all three rows processed") == ["ignored", "ignored", "failed"]
        assert api_complaints(client, agent_token) == []

    assert stored_outbox(store) == []


@pytest.mark.slow
def test_mailbox_read_over_imap_becomes_a_complaint_and_the_mail_is_filed(
    make_config: Callable[..., Config],
    running_client: Callable[[Config], TestClient],
    agent_token: str,
    relay: CapturingRelay,
) -> None:
    with running_dovecot() as dovecot:
        dovecot.append((PAYLOADS / "cpython_msg_07.eml").read_bytes())
        imap_block = {
            "enabled": True,
            "host": dovecot.host,
            "port": dovecot.port,
            "ssl": False,
            "username": dovecot.username,
            "password": dovecot.password,
            "poll_seconds": 1,
            "relay": {"port": relay.port, "from_address": OUR_ADDRESS},
            "acknowledge_unauthenticated": True,  # a CPython test mail: nobody authenticated it
        }
        config = make_config(channels={"smtp": {"enabled": False}, "imap": imap_block})
        with running_client(config) as client:
            [complaint] = eventually(lambda: api_complaints(client, agent_token), "the complaint")
            [ack] = acks(relay, 1)
        processed = dovecot.message_ids("Processed")
        left = dovecot.message_ids("INBOX")

    assert (complaint["channel"], complaint["provider"]) == ("email", "imap")
    assert complaint["body"] == "Hi there,\n\nThis is the dingus fish."
    assert [each["filename"] for each in complaint["attachments"]] == ["dingusfish.gif"]
    assert ack["Subject"] == f"[{complaint['tracking_id']}] Laporan Anda"
    assert ack["To"] == "barry@digicool.com"
    assert len(processed) == 1 and left == []


MX = "mx.kota.go.id"


def _mail(sender: str, number: int, above: str = "", reply_to: str = "") -> bytes:
    """A citizen's mail as our MTA hands it on: its Authentication-Results line (if any) on top."""
    return (
        above
        + f"From: {sender}\r\nTo: {OUR_ADDRESS}\r\n"
        + (f"Reply-To: {reply_to}\r\n" if reply_to else "")
        + f"Subject: Klik http://evil.example sekarang\r\nMessage-ID: <ack-policy-{number}@contoh.id>\r\n\r\n"
        + f"Jalan rusak nomor {number} di Kelurahan Sukamaju.\r\n"
    ).encode()


def _verified(domain: str) -> str:
    return f"Authentication-Results: {MX}; spf=pass smtp.mailfrom=warga@{domain};\r\n dkim=pass header.d={domain}\r\n"


@pytest.fixture
def guarded_config(make_config: Callable[..., Config], relay: CapturingRelay) -> Config:
    block = listener_block(relay, trusted_authserv_id=MX, acks_per_recipient_per_day=2)
    return make_config(channels={"smtp": block})


def test_acknowledgements_go_only_to_senders_our_mta_authenticated_a_few_a_day_without_their_subject(
    guarded_config: Config,
    running_client: Callable[[Config], TestClient],
    agent_token: str,
    relay: CapturingRelay,
    store: Store,
) -> None:
    port = smtp_port(guarded_config)
    # The sender forged a "pass" below the real (topmost) header our MTA wrote: only the topmost counts.
    forged_below = f"Authentication-Results: {MX}; spf=fail smtp.mailfrom=korban.example\r\n" + _verified(
        "korban.example"
    )
    other_mta = "Authentication-Results: mx.lain.example; dmarc=pass header.from=contoh.id\r\n"
    with running_client(guarded_config) as client:
        deliver(port, _mail("korban@korban.example", 1))  # no Authentication-Results: a forged From
        deliver(port, _mail("warga@contoh.id", 2, _verified("contoh.id"), reply_to="korban@korban.example"))
        deliver(port, _mail("korban@korban.example", 3, forged_below))
        deliver(port, _mail("warga@contoh.id", 4, other_mta))
        for number in (5, 6, 7):  # authenticated: two acknowledgements a day, then none
            deliver(port, _mail("warga@contoh.id", number, _verified("contoh.id")))
        eventually(lambda: len(api_complaints(client, agent_token)) == 7, "all seven complaints")
        # Replies are queued in the transaction that stores the complaint: all seven are in, so are they.
        queued = stored_outbox(store, kind="reply")
        sent = acks(relay, 2)

    assert [row.payload["to"] for row in queued] == ["warga@contoh.id", "warga@contoh.id"]
    assert sorted(message["In-Reply-To"] for message in sent) == [
        "<ack-policy-5@contoh.id>",
        "<ack-policy-6@contoh.id>",
    ]
    assert all("evil" not in message.as_string() for message in sent)
