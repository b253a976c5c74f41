"""A real ``smtplib`` client against the SMTP listener on a free loopback port."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from channels.base import Accepted, InboxItem
from channels.email import smtp
from channels.email.smtp import SmtpHandler, SmtpSettings, start_listener
from normalizer.errors import IgnoredMessage
from tests.channels.dovecot_rig import self_signed_certificate
from tests.channels.email_rig import MemoryInbox, make_context

PAYLOADS = Path(__file__).parent.parent / "payloads" / "email"
MAIL = (PAYLOADS / "indonesian_signature.eml").read_bytes()
CITIZEN = "budi.santoso@contoh.id"
OURS = "lapor@lapor.localhost"

T = TypeVar("T")


def with_listener(inbox: MemoryInbox, tmp_path: Path, client: Callable[[int], T], **settings: Any) -> T:
    """Run the listener on port 0 in this test's loop and ``client(port)`` (blocking smtplib) in a thread."""

    async def main() -> T:
        server = await start_listener(SmtpSettings(port=0, **settings), make_context(inbox.accept, tmp_path))
        try:
            return await asyncio.to_thread(client, server.sockets[0].getsockname()[1])
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


def send(port: int, message: bytes = MAIL, sender: str = CITIZEN, to: tuple[str, ...] = (OURS,)) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.contoh.id", timeout=10) as client:
        return dict(client.sendmail(sender, list(to), message))


def test_mail_for_our_domain_is_stored_raw_with_its_envelope(tmp_path: Path) -> None:
    inbox = MemoryInbox()

    refused = with_listener(inbox, tmp_path, send)

    assert refused == {}
    [item] = inbox.items()
    assert (item.channel, item.provider, item.external_id) == ("email", "smtp", "<CAB7x1@mail.contoh.id>")
    assert item.raw == MAIL
    assert item.meta["mail_from"] == CITIZEN
    assert item.meta["rcpt_tos"] == [OURS]
    assert item.meta["helo"] == "mx.contoh.id"
    assert item.headers["Message-ID"] == "<CAB7x1@mail.contoh.id>"


@dataclass
class WatchingInbox(MemoryInbox):
    """Holds accept open a moment and notes whether the client already had its answer by then."""

    client_done: threading.Event = field(default_factory=threading.Event)
    answered_before_commit: list[bool] = field(default_factory=list)

    async def accept(self, item: InboxItem) -> Accepted:
        accepted = await super().accept(item)
        # A listener that answered before awaiting accept would let the client finish within this wait.
        self.answered_before_commit.append(await asyncio.to_thread(self.client_done.wait, 0.5))
        return accepted


def test_listener_logs_never_carry_the_addresses(tmp_path: Path) -> None:
    inbox = MemoryInbox(fail_next=1)

    def client(port: int) -> None:
        with pytest.raises(smtplib.SMTPDataError):
            send(port)
        send(port, to=(OURS, "victim@gmail.com"))

    with capture_logs() as logs:
        with_listener(inbox, tmp_path, client)

    # The refused mail (store down) is answered 451 without a line of its own: the store logs its outage once.
    assert {entry["event"] for entry in logs} >= {"smtp.accepted", "smtp.refused"}
    assert "smtp.accept_failed" not in {entry["event"] for entry in logs}
    assert not [entry for entry in logs if "@" in repr(entry)]


def test_250_is_sent_only_after_accept_returned(tmp_path: Path) -> None:
    inbox = WatchingInbox()

    def client(port: int) -> None:
        send(port)
        inbox.client_done.set()

    with_listener(inbox, tmp_path, client)

    assert inbox.answered_before_commit == [False]
    assert inbox.client_done.is_set()
    assert len(inbox.rows) == 1


def test_many_senders_at_once_each_get_their_own_row(tmp_path: Path) -> None:
    inbox = MemoryInbox()
    mails = [MAIL.replace(b"<CAB7x1@mail.contoh.id>", f"<parallel-{n}@contoh.id>".encode()) for n in range(20)]

    def clients(port: int) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(max_workers=10) as pool:
            return list(pool.map(lambda mail: send(port, message=mail), mails))

    assert with_listener(inbox, tmp_path, clients) == [{}] * 20
    assert sorted(item.raw for item in inbox.items()) == sorted(mails)


def test_recipient_outside_our_domains_is_refused_with_550(tmp_path: Path) -> None:
    inbox = MemoryInbox()

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        with_listener(inbox, tmp_path, lambda port: send(port, to=("victim@gmail.com",)))

    assert refused.value.recipients["victim@gmail.com"][0] == 550
    assert inbox.calls == 0


def test_only_our_recipients_of_a_mixed_envelope_are_kept(tmp_path: Path) -> None:
    inbox = MemoryInbox()

    refused = with_listener(
        inbox,
        tmp_path,
        lambda port: send(port, to=("victim@gmail.com", "pengaduan@kota.go.id")),
        domains=["Kota.go.id"],
    )

    assert refused["victim@gmail.com"][0] == 550
    assert inbox.items()[0].meta["rcpt_tos"] == ["pengaduan@kota.go.id"]


def test_mail_over_max_bytes_is_refused_with_552_at_mail_from(tmp_path: Path) -> None:
    inbox = MemoryInbox()

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        with_listener(inbox, tmp_path, send, max_bytes=200)

    assert refused.value.smtp_code == 552
    assert inbox.calls == 0


def test_mail_over_max_bytes_without_size_is_refused_with_552_after_data(tmp_path: Path) -> None:
    inbox = MemoryInbox()

    def client(port: int) -> int:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as conversation:
            conversation.ehlo("mx.contoh.id")
            conversation.mail(CITIZEN)  # no SIZE= announced: the listener counts the bytes itself
            conversation.rcpt(OURS)
            code, _ = conversation.data(MAIL)
            return code

    assert with_listener(inbox, tmp_path, client, max_bytes=200) == 552
    assert inbox.calls == 0


def test_failing_store_answers_451_and_the_retry_is_stored_once(tmp_path: Path) -> None:
    inbox = MemoryInbox(fail_next=1)

    def client(port: int) -> tuple[int, dict[str, Any], dict[str, Any]]:
        with pytest.raises(smtplib.SMTPDataError) as first:
            send(port)
        return first.value.smtp_code, send(port), send(port)

    first_code, retry, redelivery = with_listener(inbox, tmp_path, client)

    assert first_code == 451
    assert retry == redelivery == {}
    assert inbox.calls == 3
    assert len(inbox.rows) == 1


def test_one_session_can_carry_a_refused_and_then_several_stored_mails(tmp_path: Path) -> None:
    inbox = MemoryInbox(fail_next=1)
    second = MAIL.replace(b"<CAB7x1@mail.contoh.id>", b"<CAB7x9@mail.contoh.id>")

    def client(port: int) -> int:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as conversation:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                conversation.sendmail(CITIZEN, [OURS], MAIL)
            conversation.sendmail(CITIZEN, [OURS], MAIL)
            conversation.sendmail(CITIZEN, [OURS], second)
            return refused.value.smtp_code

    assert with_listener(inbox, tmp_path, client) == 451
    assert [item.external_id for item in inbox.items()] == ["<CAB7x1@mail.contoh.id>", "<CAB7x9@mail.contoh.id>"]


def test_bounce_with_null_sender_is_stored_for_the_worker_to_ignore(tmp_path: Path) -> None:
    inbox = MemoryInbox()

    with_listener(inbox, tmp_path, lambda port: send(port, sender=""))

    [item] = inbox.items()
    assert item.meta["mail_from"] == ""
    with pytest.raises(IgnoredMessage):
        smtp.ADAPTER.parse(item.raw, item.meta)


def test_lines_longer_than_rfc_5321_allows_are_still_accepted(tmp_path: Path) -> None:
    inbox = MemoryInbox()
    long_line = b"Jalan rusak " * 500  # 6000 bytes on one line, as some webmail HTML parts are sent
    mail = b"From: a@contoh.id\r\nMessage-ID: <long@contoh.id>\r\nSubject: panjang\r\n\r\n" + long_line + b"\r\n"

    with_listener(inbox, tmp_path, lambda port: send(port, message=mail))

    assert inbox.items()[0].raw == mail


def test_mail_without_message_id_is_keyed_by_its_hash(tmp_path: Path) -> None:
    inbox = MemoryInbox()
    mail = (PAYLOADS / "no_message_id_subject_only.eml").read_bytes()

    with_listener(inbox, tmp_path, lambda port: (send(port, message=mail), send(port, message=mail)))

    [item] = inbox.items()
    assert item.external_id == smtp.ADAPTER.external_id(mail, {})
    assert item.external_id.startswith("sha256:")


def test_an_exception_anywhere_in_a_session_is_a_temporary_451() -> None:
    handler = SmtpHandler(SmtpSettings(), make_context(MemoryInbox().accept, Path("/nonexistent")))
    assert asyncio.run(handler.handle_exception(RuntimeError("boom"))).startswith("451 ")


def test_starttls_with_the_configured_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    inbox = MemoryInbox()

    def client(port: int) -> str | None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as conversation:
            conversation.ehlo("mx.contoh.id")
            assert conversation.has_extn("starttls")
            conversation.starttls(context=ssl.create_default_context(cafile=str(cert)))
            version = conversation.sock.version() if isinstance(conversation.sock, ssl.SSLSocket) else None
            conversation.sendmail(CITIZEN, [OURS], MAIL)
            return version

    version = with_listener(inbox, tmp_path, client, tls_cert=cert, tls_key=key)

    assert version is not None and version.startswith("TLS")
    assert len(inbox.rows) == 1


def test_settings_defaults_listen_on_loopback_2525_for_lapor_localhost() -> None:
    settings = SmtpSettings()
    assert (settings.enabled, settings.host, settings.port) == (True, "127.0.0.1", 2525)
    assert settings.domains == ["lapor.localhost"]
    assert settings.max_bytes == 10 * 1024 * 1024
    assert settings.relay is None


@pytest.mark.parametrize(
    "block",
    [{"tls_cert": "/etc/cert.pem"}, {"domains": []}, {"domains": [" "]}, {"relay": {"hots": "x"}}, {"mx": True}],
)
def test_settings_refuse_incomplete_tls_empty_domains_and_unknown_keys(block: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SmtpSettings.model_validate(block)
