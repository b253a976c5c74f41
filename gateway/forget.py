"""A citizen's request to be forgotten (UU PDP): their identity out of every table, their complaints kept.

``forget(store, phone=…)`` (or ``email=``, ``telegram_id=``) finds the complaints the person made
(by reporter field or reply address), then removes every spelling of the identity — the number
as ``+62…``, ``62…``, ``0…``, with separators or URL-encoded, the e-mail address in any case, the
Telegram id, and the names those complaints carried — from the complaints, the raw inbox rows
(bytes, headers, meta), the outbox payloads and the attachments' file names. The complaints
themselves stay, with their text, category and status. One audit entry records what was done,
naming the identity only masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from gateway import audit
from gateway.logs import mask
from normalizer.phone import to_e164
from sinks.store.db import Store
from sinks.store.models import ChannelState, Complaint, InboxMessage, OutboxMessage

FORGET = "reporter_forget"
FORGOTTEN = "forgotten"
WOULD_FORGET = "dry_run"
# What takes the identity's place: no quote, backslash or percent sign, so JSON, forms and headers stay valid.
PLACEHOLDER = "dihapus"
_BATCH = 500


@dataclass
class Forgotten:
    """What a forget request touched (or, in a dry run, would touch)."""

    complaints: list[str] = field(default_factory=list)  # tracking ids
    inbox_rows: list[int] = field(default_factory=list)
    outbox_rows: list[int] = field(default_factory=list)
    attachments: int = 0
    state_keys: int = 0  # channel state naming the person (e.g. their acknowledgement counter)

    def summary(self) -> dict[str, Any]:
        return {
            "complaints": self.complaints,
            "inbox_rows": self.inbox_rows,
            "outbox_rows": self.outbox_rows,
            "attachments": self.attachments,
            "state_keys": self.state_keys,
        }


class Identity:
    """The patterns that find one person's identity wherever a channel wrote it."""

    def __init__(self, phone: str | None, email: str | None, telegram_id: str | None) -> None:
        given = [value for value in (phone, email, telegram_id) if value]
        if len(given) != 1:
            raise ValueError("name exactly one of --phone, --email, --telegram-id")
        self.phone = to_e164(phone) if phone else None
        if phone and self.phone is None:
            raise ValueError(f"--phone {phone!r} is not a phone number")
        self.email = email.strip().lower() if email else None
        if email and (self.email is None or "@" not in self.email):
            raise ValueError(f"--email {email!r} is not an e-mail address")
        self.telegram_id = telegram_id.strip() if telegram_id else None
        if telegram_id and not (self.telegram_id or "").lstrip("-").isdigit():
            raise ValueError(f"--telegram-id {telegram_id!r} is not a Telegram user id (digits)")
        self.names: set[str] = set()
        self._identifiers: list[re.Pattern[str]] = []
        self._names: list[re.Pattern[str]] = []

    @property
    def label(self) -> str:
        """For the audit log: masked, like every log line."""
        if self.phone:
            return f"phone:{mask(self.phone)}"
        if self.email:
            return f"email:{mask(self.email)}"
        return f"telegram_id:{(self.telegram_id or '')[:3]}***"

    def complaint_filter(self) -> Any:
        if self.phone:
            digits = self.phone.lstrip("+")
            addresses = [self.phone, digits, f"whatsapp:{self.phone}", f"+{digits}"]
            return or_(col(Complaint.reporter_phone) == self.phone, col(Complaint.reply_address).in_(addresses))
        if self.email:
            return or_(
                func.lower(col(Complaint.reporter_email)) == self.email,
                func.lower(col(Complaint.reply_address)) == self.email,
            )
        return or_(
            col(Complaint.reporter_telegram_id) == self.telegram_id, col(Complaint.reply_address) == self.telegram_id
        )

    def compile(self) -> None:
        """Patterns over text (raw payloads are read as UTF-8 with surrogate escapes, written back exactly)."""
        patterns: list[str] = []
        if self.phone:
            national = self.phone[3:] if self.phone.startswith("+62") else None
            if national:
                spaced = r"[\s.\-]?".join(national)
                patterns.append(rf"(?<![\d])(?:(?:\+|%2B|%2b)?62|0)[\s.\-]?{spaced}(?![\d])")
            else:
                spaced = r"[\s.\-]?".join(self.phone.lstrip("+"))
                patterns.append(rf"(?<![\d])(?:\+|%2B|%2b)?{spaced}(?![\d])")
        if self.email:
            for spelling in {self.email, quote(self.email, safe=""), quote_plus(self.email)}:
                patterns.append(re.escape(spelling))
        if self.telegram_id:
            patterns.append(rf"(?<![\d]){re.escape(self.telegram_id)}(?![\d])")
        names = [
            re.escape(spelling)
            for name in sorted(self.names, key=len, reverse=True)
            if len(name.strip()) >= 3  # a two-letter "name" would eat ordinary words
            for spelling in {name, quote(name), quote_plus(name)}
        ]
        self._identifiers = [re.compile(pattern, re.IGNORECASE) for pattern in patterns]
        self._names = [re.compile(pattern, re.IGNORECASE) for pattern in names]

    def scrub(self, text: str, names: bool = True) -> str:
        """``text`` without the identifier; with ``names`` also without the names the person's complaints gave.

        Names are scrubbed only from the person's own rows: another citizen may name a namesake.
        """
        for pattern in self._identifiers + (self._names if names else []):
            text = pattern.sub(self._placeholder, text)
        return text

    def _placeholder(self, match: re.Match[str]) -> str:
        found = match.group(0)
        # A number stays a number, and a valid one (a JSON id has no leading zeros): 0.
        return "0" if found.lstrip("+").replace(" ", "").isdigit() else PLACEHOLDER

    def scrub_json(self, value: Any, names: bool = True) -> Any:
        return json.loads(self.scrub(json.dumps(value, ensure_ascii=False), names))

    def scrub_bytes(self, raw: bytes, names: bool = True) -> bytes:
        """The raw payload without the identity; the person's own JSON payloads also lose every identity field."""
        if names and raw[:1] in (b"{", b"["):
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):
                pass
            else:
                compact = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
                scrubbed = json.dumps(_without_identity_fields(data), ensure_ascii=False, separators=(",", ":"))
                if scrubbed != compact:  # rewritten only when a field changed (the edit is in place)
                    raw = scrubbed.encode()
        text = raw.decode("utf-8", errors="surrogateescape")
        return self.scrub(text, names).encode("utf-8", errors="surrogateescape")


# Fields in which providers name the sender (Telegram's from/chat, Meta's contacts, our manual entry).
_IDENTITY_FIELDS = frozenset({"first_name", "last_name", "username", "name", "phone", "email", "wa_id", "user_id"})


def _without_identity_fields(data: Any) -> Any:
    """``data`` with the values of identity fields replaced, at any depth (iteratively: payloads may nest)."""
    root = [data]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in items:
            if isinstance(node, dict) and key in _IDENTITY_FIELDS and isinstance(value, str | int) and value:
                node[key] = 0 if isinstance(value, int) and not isinstance(value, bool) else PLACEHOLDER
            elif isinstance(value, dict | list):
                stack.append(value)
    return root[0]


def _rows(session: Session, model: Any) -> Iterator[Any]:
    """Every row of a table in id order, a batch at a time (raw payloads are not all held at once)."""
    last = 0
    while True:
        batch = list(session.execute(select(model).where(model.id > last).order_by(model.id).limit(_BATCH)).scalars())
        if not batch:
            return
        yield from batch
        last = batch[-1].id


def forget(
    store: Store,
    actor: str,
    phone: str | None = None,
    email: str | None = None,
    telegram_id: str | None = None,
    dry_run: bool = False,
) -> Forgotten:
    """Remove one person's identity everywhere (``ValueError`` for a bad identifier); ``dry_run`` only counts."""
    identity = Identity(phone, email, telegram_id)
    done = Forgotten()
    with store.read() if dry_run else store.write() as session:
        complaints = list(session.execute(select(Complaint).where(identity.complaint_filter())).scalars())
        identity.names = {c.reporter_name for c in complaints if c.reporter_name}
        identity.compile()
        own_inbox = {c.inbox_id for c in complaints}
        own_tracking = {c.tracking_id for c in complaints}
        for complaint in complaints:
            done.complaints.append(complaint.tracking_id)
            attachments = identity.scrub_json(complaint.attachments)
            done.attachments += sum(1 for a, b in zip(attachments, complaint.attachments, strict=True) if a != b)
            if dry_run:
                continue
            complaint.reporter_name = complaint.reporter_phone = None
            complaint.reporter_email = complaint.reporter_telegram_id = None
            complaint.reply_address = None
            complaint.attachments = attachments
            for name in ("subject", "body", "location_text"):
                value = getattr(complaint, name)
                if value:
                    setattr(complaint, name, identity.scrub(value))
        for row in _rows(session, InboxMessage):
            own = row.id in own_inbox
            scrubbed = (
                identity.scrub_bytes(row.raw, own),
                identity.scrub_json(row.headers, own),
                identity.scrub_json(row.meta, own),
            )
            if scrubbed != (row.raw, row.headers, row.meta):
                done.inbox_rows.append(row.id)
                if not dry_run:
                    row.raw, row.headers, row.meta = scrubbed
        for outbox in _rows(session, OutboxMessage):
            payload = identity.scrub_json(outbox.payload, outbox.tracking_id in own_tracking)
            if payload != outbox.payload:
                done.outbox_rows.append(outbox.id)
                if not dry_run:
                    outbox.payload = payload
        for state in list(session.execute(select(ChannelState)).scalars()):
            if identity.scrub(state.key, names=False) != state.key:
                done.state_keys += 1  # a counter or cursor keyed by the person: dropped, it is only state
                if not dry_run:
                    session.delete(state)
            elif identity.scrub_json(state.value, names=False) != state.value:
                done.state_keys += 1
                if not dry_run:
                    state.value = identity.scrub_json(state.value, names=False)
    audit.record(store, actor, FORGET, identity.label, WOULD_FORGET if dry_run else FORGOTTEN, done.summary())
    return done
