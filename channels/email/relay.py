"""Acknowledgements by mail, through the operator's relay (smarthost) with stdlib ``smtplib``.

The acknowledgement is marked ``Auto-Submitted: auto-replied`` (so other robots
do not answer it), carries the tracking id in the subject and answers the
citizen's Message-ID; its own Message-ID is returned so the worker can link a
later reply (In-Reply-To / References) to the complaint.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from channels.base import Reply, Sent
from normalizer.errors import ProviderError, ProviderRejected

log = structlog.get_logger(__name__)

ACK_SENT = "email.ack_sent"
ACK_FAILED = "email.ack_failed"
# What the acknowledgement is called when the citizen's mail had no subject.
DEFAULT_SUBJECT = "Laporan Anda"


class RelaySettings(BaseModel):
    """The SMTP server that carries our acknowledgements out (``channels.<smtp|imap>.relay``)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    from_address: str = "lapor@lapor.localhost"
    starttls: bool = False
    # A CA bundle for a relay whose certificate the system does not trust (a regional CA, self-signed).
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)


def acknowledgement_subject(tracking_id: str | None) -> str:
    """``[LPR-7K3Q9X] Laporan Anda``: never the sender's own subject.

    Echoing it would let anyone have our relay carry their words, under our name, to whoever they
    named as sender; In-Reply-To and References still thread the answer under the citizen's mail.
    """
    if tracking_id:
        return f"[{tracking_id}] {DEFAULT_SUBJECT}"
    return f"Re: {DEFAULT_SUBJECT}"


def build_acknowledgement(reply: Reply, from_address: str, message_id: str) -> EmailMessage:
    """The acknowledgement mail for ``reply`` (pure: the caller picks the Message-ID)."""
    extra = reply.extra or {}
    original_id = extra.get("message_id")
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = reply.to
    message["Subject"] = acknowledgement_subject(reply.tracking_id)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    # RFC 3834: mark the answer as automatic so vacation responders and our own listener leave it alone.
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    if isinstance(original_id, str) and original_id:
        message["In-Reply-To"] = original_id
        message["References"] = original_id
    message.set_content(reply.text)
    return message


def _deliver(message: EmailMessage, relay: RelaySettings, recipient: str) -> None:
    local_hostname = relay.from_address.rpartition("@")[2] or "localhost"
    with smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_seconds, local_hostname=local_hostname) as smtp:
        if relay.starttls:
            smtp.starttls(context=ssl.create_default_context(cafile=str(relay.ca_file) if relay.ca_file else None))
        if relay.username:
            password = relay.password.get_secret_value() if relay.password else ""
            smtp.login(relay.username, password)
        smtp.send_message(message, from_addr=relay.from_address, to_addrs=[recipient])


def _classify(code: int, detail: str) -> ProviderError | ProviderRejected:
    if code >= 500:
        return ProviderRejected(f"relay refused the acknowledgement for good: {code} {detail}")
    return ProviderError(f"relay failed temporarily: {code} {detail}")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


async def send_acknowledgement(reply: Reply, relay: RelaySettings | None, config_key: str) -> Sent:
    """Send ``reply`` through ``relay``; ProviderError to retry later, ProviderRejected for good."""
    if relay is None:
        raise ProviderRejected(f"{config_key}.relay is not configured: no acknowledgement can be sent")
    domain = relay.from_address.rpartition("@")[2] or None
    message_id = make_msgid(idstring="lapor", domain=domain)
    try:
        message = build_acknowledgement(reply, relay.from_address, message_id)
    except (ValueError, TypeError) as exc:  # an address or subject a mail header cannot carry
        raise ProviderRejected(f"acknowledgement cannot be written: {exc}") from exc
    try:
        await asyncio.to_thread(_deliver, message, relay, reply.to)
    except smtplib.SMTPRecipientsRefused as exc:
        code, detail = next(iter(exc.recipients.values()), (550, b"recipient refused"))
        raise _classify(code, _text(detail)) from exc
    except smtplib.SMTPResponseException as exc:
        raise _classify(exc.smtp_code, _text(exc.smtp_error)) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise ProviderRejected(f"relay does not support what {config_key}.relay asks for: {exc}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise ProviderError(f"relay unreachable or disconnected: {exc.__class__.__name__}: {exc}") from exc
    log.info(ACK_SENT, tracking_id=reply.tracking_id, relay=relay.host)
    return Sent(provider_message_id=message_id)
