"""Whom an acknowledgement mail may go to: senders the receiving MTA authenticated, a few a day each.

Anyone can write any ``From`` or ``Reply-To``. Answering them blindly makes the gateway mail a
stranger (through our authenticated relay, from our own address) whenever someone forges one.
So the acknowledgement goes only to an address whose domain the MTA in front of us verified:
its ``Authentication-Results`` header (RFC 8601, authserv-id ``trusted_authserv_id``) says
``dmarc=pass`` for that From domain, or ``dkim=pass`` / ``spf=pass`` for a domain the address
belongs to. Only the topmost such header counts: the MTA prepends its own above any a sender
forged. An operator may opt out (``acknowledge_unauthenticated: true``). Each address gets at
most ``acks_per_recipient_per_day`` acknowledgements, however many mails arrive.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel, Field

from channels.base import ChannelContext
from channels.email.media import save_attachments
from normalizer.types import ChannelMessage

log = structlog.get_logger(__name__)

ACK_WITHHELD = "email.ack_withheld"
_COMMENT = re.compile(r"\([^()]*\)")
_METHOD = re.compile(r"^\s*([A-Za-z][\w-]*)\s*=\s*([A-Za-z]+)")
_PROPERTY = re.compile(r"([A-Za-z][\w-]*)\.([A-Za-z][\w-]*)\s*=\s*(\"[^\"]*\"|[^\s;]+)")
_WINDOW = timedelta(days=1)


class AckPolicy(BaseModel):
    """The ``channels.smtp`` / ``channels.imap`` keys deciding who gets an acknowledgement."""

    # The authserv-id the MTA in front of us writes (Postfix + OpenDMARC/OpenDKIM: its hostname).
    trusted_authserv_id: str | None = None
    # True: acknowledge every sender, authenticated or not (a closed mailbox, tests).
    acknowledge_unauthenticated: bool = False
    acks_per_recipient_per_day: int = Field(default=5, ge=0)


@dataclass(frozen=True)
class Result:
    method: str
    result: str
    properties: dict[str, str]


def parse_authentication_results(value: str) -> tuple[str, list[Result]]:
    """(authserv-id, results) of one ``Authentication-Results`` header value."""
    text = _COMMENT.sub(" ", value)
    head, *resinfos = text.split(";")
    authserv_id = (head.split() or [""])[0].strip().lower()
    results: list[Result] = []
    for resinfo in resinfos:
        method = _METHOD.match(resinfo)
        if method is None:
            continue
        properties = {f"{p.lower()}.{n.lower()}": v.strip('"').lower() for p, n, v in _PROPERTY.findall(resinfo)}
        results.append(Result(method.group(1).lower(), method.group(2).lower(), properties))
    return authserv_id, results


def _domain_of(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()


def _within(domain: str, authenticated: str) -> bool:
    """Relaxed alignment: the address's domain is the authenticated one or below it."""
    return bool(authenticated) and (domain == authenticated or domain.endswith("." + authenticated))


def authenticated_by(headers: list[str], trusted: str, address: str) -> str | None:
    """Which check vouches for ``address`` in the topmost header from ``trusted`` (``dmarc``…), or None."""
    domain = _domain_of(address)
    for header in headers:
        authserv_id, results = parse_authentication_results(header)
        if authserv_id != trusted.lower():
            continue
        for each in results:
            if each.result != "pass":
                continue
            if each.method == "dmarc" and _domain_of(each.properties.get("header.from", "")) == domain:
                return "dmarc"
            if each.method == "dkim":
                signer = each.properties.get("header.d") or _domain_of(each.properties.get("header.i", ""))
                if _within(domain, signer):
                    return "dkim"
            if each.method == "spf":
                sender = each.properties.get("smtp.mailfrom") or each.properties.get("smtp.helo", "")
                if _within(domain, _domain_of(sender)):
                    return "spf"
        return None  # only the topmost header of our MTA: the ones below may be the sender's forgeries
    return None


def withheld_because(message: ChannelMessage, policy: AckPolicy) -> str | None:
    """Why no acknowledgement may go to ``message.reply_to`` (None: it may)."""
    if not message.reply_to or policy.acknowledge_unauthenticated:
        return None
    if not policy.trusted_authserv_id:
        return "no trusted_authserv_id configured: the sender cannot be authenticated"
    headers = [str(each) for each in message.extra.get("authentication_results") or []]
    if authenticated_by(headers, policy.trusted_authserv_id, message.reply_to) is None:
        return "reply address not authenticated by the receiving MTA"
    return None


def _take_quota(ctx: ChannelContext, address: str, limit: int, now: datetime) -> bool:
    """One of ``limit`` acknowledgements a day to ``address`` (kept in the channel state store).

    Not counted under a lock: two workers at the same instant may both send one more, which a
    daily cap against mail bombing can afford.
    """
    key = f"email:acks:{address.lower()}"
    state: Any = ctx.state.get(key) or {}
    start = datetime.fromisoformat(state["since"]) if "since" in state else now
    count = int(state.get("count", 0))
    if now - start >= _WINDOW:
        start, count = now, 0
    if count >= limit:
        return False
    ctx.state.put(key, {"since": start.isoformat(), "count": count + 1})
    return True


async def enrich(message: ChannelMessage, settings: Any, ctx: ChannelContext) -> ChannelMessage:
    """The worker's step for a mail: its attachments saved, and no reply address unless it may be answered."""
    message = await save_attachments(message, settings, ctx)
    policy: AckPolicy = settings
    reason = withheld_because(message, policy)
    if reason is None and message.reply_to:
        allowed = await asyncio.to_thread(
            _take_quota, ctx, message.reply_to, policy.acks_per_recipient_per_day, datetime.now(UTC)
        )
        if not allowed:
            reason = f"more than {policy.acks_per_recipient_per_day} acknowledgements to this address today"
    if reason is None:
        return message
    log.info(ACK_WITHHELD, reason=reason, reply_to=message.reply_to)
    return replace(message, reply_to=None, extra={**message.extra, "ack_withheld": reason})
