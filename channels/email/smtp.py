"""Our own SMTP listener (aiosmtpd): the MX, or a forwarding rule, points at the gateway.

The handler refuses recipients outside ``domains`` (never an open relay),
stores each mail raw in the inbox and answers ``250`` only after the inbox row
is committed; any failure is a ``451`` so the sending MTA tries again later.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import Field, field_validator, model_validator

from channels.base import ChannelAdapter, ChannelContext, ChannelSettings, Reply, Sent
from channels.email import acks
from channels.email.acks import AckPolicy
from channels.email.mime import external_id, inbox_item, parse_mail
from channels.email.relay import RelaySettings, send_acknowledgement
from normalizer.errors import StoreUnavailable, TryLater
from normalizer.types import ChannelMessage

log = structlog.get_logger(__name__)

PROVIDER = "smtp"
LISTENING = "smtp.listening"
ACCEPTED = "smtp.accepted"
REFUSED = "smtp.refused"
ACCEPT_FAILED = "smtp.accept_failed"
SESSION_ERROR = "smtp.session_error"

TRY_AGAIN = TryLater.SMTP_REPLY


class SmtpSettings(ChannelSettings, AckPolicy):
    """``channels.smtp``: on by default, so ``make run`` listens on 127.0.0.1:2525."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=0, le=65535)
    domains: list[str] = Field(default_factory=lambda: ["lapor.localhost"], min_length=1)
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    relay: RelaySettings | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @field_validator("domains")
    @classmethod
    def _lowercase_domains(cls, value: list[str]) -> list[str]:
        domains = [domain.strip().lower().lstrip("@") for domain in value]
        if not all(domains):
            raise ValueError("an empty domain would accept nothing; list the domains mail is addressed to")
        return domains

    @model_validator(mode="after")
    def _tls_pair(self) -> SmtpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both for STARTTLS, or neither")
        return self


class SmtpHandler:
    """aiosmtpd handler: RCPT checks the domain, DATA stores the mail; nothing else is ours to decide."""

    def __init__(self, settings: SmtpSettings, ctx: ChannelContext) -> None:
        self._domains = frozenset(settings.domains)
        self._ctx = ctx

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2].lower()
        if domain not in self._domains:
            log.info(REFUSED, reason="relay_denied", domain=domain)
            return "550 5.7.1 Relaying denied: this server takes mail for its own domains only"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        meta: dict[str, Any] = {
            # aiosmtpd reports the null sender of a bounce as "<>": the parser looks for "".
            "mail_from": "" if envelope.mail_from in (None, "", "<>") else envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": peer,
            "helo": session.host_name,
        }
        try:
            accepted = await self._ctx.accept(inbox_item(raw, meta, PROVIDER))
        except StoreUnavailable:
            return TRY_AGAIN  # the store's outage is logged once by the gateway, not once per mail
        except Exception as exc:  # the sender keeps the mail and retries: 451, never a 5xx
            log.warning(ACCEPT_FAILED, error=f"{exc.__class__.__name__}: {exc}")
            return TRY_AGAIN
        log.info(ACCEPTED, inbox_id=accepted.inbox_id, duplicate=accepted.duplicate, size=len(raw))
        return "250 2.0.0 OK: queued"

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd would answer 500 (permanent) and the sender would drop the mail.
        log.warning(SESSION_ERROR, error=f"{error.__class__.__name__}: {error}")
        return "451 4.3.0 Temporary failure, please try again later"


class _LenientSMTP(SMTP):
    """aiosmtpd refuses lines over 1000 bytes with a permanent 500; some mailers send them anyway.

    Postfix accepts such lines (it splits them); refusing would bounce a citizen's complaint.
    """

    line_length_limit = 64 * 1024


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def start_listener(settings: SmtpSettings, ctx: ChannelContext) -> asyncio.Server:
    """Bind the listener (port 0 picks a free one) and return the serving ``asyncio.Server``.

    ``loop.create_server`` rather than aiosmtpd's ``Controller``: the Controller
    probes the port with a test connection and cannot bind port 0.
    """
    handler = SmtpHandler(settings, ctx)
    tls_context = _tls_context(settings)
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return _LenientSMTP(
            handler,
            data_size_limit=settings.max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.domains[0],
            ident="lapor-gateway ESMTP",
            tls_context=tls_context,
            loop=loop,
        )

    # reuse_port: each process of `serve --workers N` listens on the same port and the kernel spreads them.
    server = await loop.create_server(protocol, host=settings.host, port=settings.port, reuse_port=settings.port != 0)
    port = server.sockets[0].getsockname()[1] if server.sockets else settings.port
    log.info(LISTENING, host=settings.host, port=port, starttls=tls_context is not None)
    return server


async def serve(settings: SmtpSettings, ctx: ChannelContext) -> None:
    server = await start_listener(settings, ctx)
    async with server:
        await server.serve_forever()


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    return parse_mail(raw, meta, PROVIDER)


async def send(reply: Reply, settings: SmtpSettings, client: httpx.AsyncClient) -> Sent:
    return await send_acknowledgement(reply, settings.relay, "channels.smtp")


ADAPTER = ChannelAdapter(
    name="smtp",
    provider=PROVIDER,
    settings=SmtpSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    service=serve,
    enrich=acks.enrich,
)
