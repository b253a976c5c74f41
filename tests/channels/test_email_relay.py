"""Acknowledgements through the relay, seen by a real SMTP server on a free loopback port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.base import Reply, Sent
from channels.email import imap, smtp
from channels.email.mime import parse_mail
from channels.email.relay import RelaySettings, acknowledgement_subject, build_acknowledgement
from normalizer.errors import IgnoredMessage, ProviderError, ProviderRejected
from tests.channels.dovecot_rig import self_signed_certificate
from tests.channels.email_rig import running_relay
from tests.support.server import free_port

ACK_TEXT = "Laporan Anda diterima. No. LPR-7K3Q9X. Cek status: kirim STATUS LPR-7K3Q9X"


def reply(**overrides: Any) -> Reply:
    fields: dict[str, Any] = {
        "channel": "email",
        "provider": "smtp",
        "to": "budi.santoso@contoh.id",
        "text": ACK_TEXT,
        "idempotency_key": "reply:1:0",
        "tracking_id": "LPR-7K3Q9X",
        "in_reply_to": "<CAB7x1@mail.contoh.id>",
        "extra": {"subject": "Jalan berlubang – Jl. Sudirman", "message_id": "<CAB7x1@mail.contoh.id>"},
    }
    return Reply(**{**fields, **overrides})


def send_through(relay_port: int, message: Reply, **relay: Any) -> Sent:
    settings = smtp.SmtpSettings(relay=RelaySettings(port=relay_port, from_address="lapor@kota.go.id", **relay))

    async def main() -> Sent:
        async with httpx.AsyncClient() as client:
            return await smtp.send(message, settings, client)

    return asyncio.run(main())


def test_acknowledgement_answers_the_citizen_mail_in_its_thread() -> None:
    with running_relay() as relay:
        sent = send_through(relay.port, reply())

    [(mail_from, rcpt_tos, message)] = relay.received
    assert mail_from == "lapor@kota.go.id"
    assert rcpt_tos == ["budi.santoso@contoh.id"]
    assert message["Subject"] == "[LPR-7K3Q9X] Laporan Anda"  # never the sender's subject
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == message["References"] == "<CAB7x1@mail.contoh.id>"
    assert message["Message-ID"] == sent.provider_message_id
    assert str(sent.provider_message_id).endswith("@kota.go.id>")
    assert message.get_content().strip() == ACK_TEXT


def test_our_own_acknowledgement_coming_back_is_ignored_not_answered() -> None:
    ack = build_acknowledgement(reply(), "lapor@kota.go.id", "<lapor.1@kota.go.id>")
    with pytest.raises(IgnoredMessage, match="Auto-Submitted"):
        parse_mail(ack.as_bytes(), {"mail_from": "lapor@kota.go.id"}, "smtp")


def test_the_acknowledgement_subject_never_echoes_the_senders_subject() -> None:
    forged = "Re: Your account is suspended, log in at http://evil.example"
    with running_relay() as relay:
        send_through(relay.port, reply(extra={"subject": forged, "message_id": None}))
    [(_, _, message)] = relay.received
    assert message["Subject"] == "[LPR-7K3Q9X] Laporan Anda"
    assert "evil" not in message.as_string()
    assert acknowledgement_subject(None) == "Re: Laporan Anda"


def test_a_mail_without_message_id_gets_an_acknowledgement_without_in_reply_to() -> None:
    with running_relay() as relay:
        send_through(relay.port, reply(extra={"subject": None, "message_id": None}, in_reply_to="sha256:ab"))

    [(_, _, message)] = relay.received
    assert message["In-Reply-To"] is None
    assert message["Subject"] == "[LPR-7K3Q9X] Laporan Anda"


@pytest.mark.parametrize(
    ("answer", "error"), [("550 5.1.1 No such user", ProviderRejected), ("451 4.3.0 Busy", ProviderError)]
)
def test_relay_refusals_map_onto_reject_or_retry(answer: str, error: type[Exception]) -> None:
    with running_relay() as relay:
        relay.refuse["budi.santoso@contoh.id"] = answer
        with pytest.raises(error):
            send_through(relay.port, reply())
    assert relay.received == []


def test_an_unreachable_relay_is_retryable() -> None:
    with pytest.raises(ProviderError):
        send_through(free_port(), reply(), timeout_seconds=5)


def test_starttls_and_login_on_a_submission_relay(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with running_relay(tls=(cert, key), credentials=("lapor", "sandi-relay")) as relay:
        sent = send_through(relay.port, reply(), starttls=True, ca_file=cert, username="lapor", password="sandi-relay")

    assert relay.logins == ["lapor"]
    [(_, _, message)] = relay.received
    assert message["Message-ID"] == sent.provider_message_id


def test_a_relay_certificate_nobody_vouches_for_is_not_trusted(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with running_relay(tls=(cert, key)) as relay, pytest.raises(ProviderError, match="SSL"):
        send_through(relay.port, reply(), starttls=True)
    assert relay.received == []


def test_starttls_asked_of_a_relay_without_it_is_rejected_for_good() -> None:
    with running_relay() as relay, pytest.raises(ProviderRejected, match=r"(?i)starttls"):
        send_through(relay.port, reply(), starttls=True)


def test_an_address_a_header_cannot_carry_is_rejected_for_good() -> None:
    with running_relay() as relay, pytest.raises(ProviderRejected):
        send_through(relay.port, reply(to="budi@contoh.id\r\nBcc: everyone@contoh.id"))
    assert relay.received == []


def test_without_a_relay_no_acknowledgement_can_be_sent() -> None:
    async def main() -> Sent:
        async with httpx.AsyncClient() as client:
            return await imap.send(reply(provider="imap"), imap.ImapSettings(), client)

    with pytest.raises(ProviderRejected, match=r"channels\.imap\.relay"):
        asyncio.run(main())
