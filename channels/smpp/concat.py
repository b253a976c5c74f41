"""From deliver_sm to inbox rows: whole messages at once, concatenated ones when complete.

Every part of a concatenated message is written to ``ctx.state`` before its
deliver_sm is answered, so an acknowledged part survives a crash. When the last
part arrives the parts become ONE inbox row; when they wait longer than
``concat_timeout_s`` what arrived is stored, marked incomplete, rather than
nothing. State keys:

- ``smpp:part:<sender>:<group>:<seq>`` — a part waiting for its siblings;
- ``smpp:seen:<digest>`` — when a message (its content digest) was first seen,
  so a redelivery gets the same external id (see ``message.message_id``);
- ``smpp:done:<part digest>`` — a part of a message already stored, so the SMSC
  re-sending one part after a lost resp does not start a new, incomplete message.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from smpplib import consts

from channels.base import ChannelContext, InboxItem
from channels.smpp.codec import Alphabet
from channels.smpp.message import (
    PROVIDER,
    DeliverSm,
    RawDocument,
    decode_deliver_sm,
    group_digest,
    message_id,
)
from normalizer.errors import PayloadError, StoreUnavailable, TryLater

log = structlog.get_logger(__name__)

STATUS_OK: int = consts.SMPP_ESME_ROK
# "Temporary application error": the SMSC keeps the message and delivers it again later.
STATUS_RETRY: int = TryLater.SMPP_STATUS

# A redelivery after a lost deliver_sm_resp normally follows within minutes (the
# SMSC's response timer, or our rebind). Within this window an identical text from
# the same sender is the same message; after it, a new one (a second "STATUS …").
DEDUP_WINDOW_S = 3600.0
# Parts of a stored message are remembered this long; only the same sender, reference,
# place and bytes match, so a genuinely new message is never swallowed.
DONE_WINDOW_S = 24 * 3600.0
HOUSEKEEPING_EVERY_S = 600.0

PART = "smpp:part:"
SEEN = "smpp:seen:"
DONE = "smpp:done:"

EVENT_STORED = "smpp.stored"
EVENT_PART_STORED = "smpp.part_stored"
EVENT_PART_DUPLICATE = "smpp.part_duplicate"
EVENT_INCOMPLETE = "smpp.incomplete"
EVENT_STORE_FAILED = "smpp.store_failed"
EVENT_UNDECODABLE = "smpp.undecodable"


def _group_key(part: DeliverSm) -> str:
    assert part.concat is not None
    concat = part.concat
    return f"{PART}{part.source_addr}:{concat.ref_bits}.{concat.ref}.{concat.total}"


class Inbound:
    """Answers each deliver_sm with the status the SMSC should see, after the state or inbox write."""

    def __init__(
        self,
        ctx: ChannelContext,
        default_alphabet: Alphabet,
        concat_timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ctx = ctx
        self._alphabet: Alphabet = default_alphabet
        self._timeout = concat_timeout_s
        self._clock = clock
        # deliver_sm handling and the timeout sweep both touch the parts; one at a time.
        self._lock = asyncio.Lock()
        self._last_housekeeping = 0.0

    async def handle(self, raw_pdu: bytes) -> int:
        """The deliver_sm_resp status for one deliver_sm PDU."""
        try:
            async with self._lock:
                await self._handle(raw_pdu)
        except StoreUnavailable:
            return STATUS_RETRY  # the store's outage is logged once by the gateway, not once per PDU
        except Exception as exc:  # any failure to store must become "try again", never a lost message
            log.warning(EVENT_STORE_FAILED, error=f"{type(exc).__name__}: {exc}")
            return STATUS_RETRY
        return STATUS_OK

    async def _handle(self, raw_pdu: bytes) -> None:
        now = self._clock()
        try:
            part = decode_deliver_sm(raw_pdu)
        except PayloadError:
            # Kept anyway: parse raises PayloadError again, so it lands in the failed list with its bytes.
            log.warning(EVENT_UNDECODABLE, size=len(raw_pdu))
            digest = hashlib.sha256(raw_pdu[16:]).hexdigest()
            doc = RawDocument(message_id(digest, "undecodable", 0), self._alphabet, now, ((1, raw_pdu),), 1, "", "")
            await self._ctx.accept(InboxItem("sms", PROVIDER, doc.external_id, doc.to_bytes(), meta=doc.meta()))
            return
        if part.concat is None:
            await self._store([(1, raw_pdu)], 1, part, now)
            return
        await self._add_part(part, raw_pdu, now)

    async def _add_part(self, part: DeliverSm, raw_pdu: bytes, now: float) -> None:
        assert part.concat is not None
        state = self._ctx.state
        digest = part.content_digest()
        if state.get(DONE + digest) is not None:
            log.info(EVENT_PART_DUPLICATE, of="stored message", seq=part.concat.seq)
            return
        group = _group_key(part)
        key = f"{group}:{part.concat.seq:03d}"
        waiting = state.get(key)
        if waiting is not None and decode_deliver_sm(bytes.fromhex(waiting["pdu"])).content_digest() != digest:
            # Same sender, reference and place but other bytes: a new message reusing the (8-bit, cycling)
            # reference while the old one still waits. The old one is stored as it is, then the new one starts.
            await self._complete(state.items(group + ":"))
            waiting = None
        if waiting is None:
            state.put(key, {"pdu": raw_pdu.hex(), "at": now, "total": part.concat.total})
            log.info(EVENT_PART_STORED, seq=part.concat.seq, total=part.concat.total)
        else:
            log.info(EVENT_PART_DUPLICATE, of="waiting part", seq=part.concat.seq)
        parts = state.items(group + ":")
        if len(parts) >= part.concat.total:
            await self._complete(parts)

    async def _complete(self, waiting: Sequence[tuple[str, Any]]) -> None:
        """Stores a group of parts as one message, then forgets the parts (in that order)."""
        now = self._clock()
        parts = sorted((int(key.rsplit(":", 1)[1]), bytes.fromhex(value["pdu"])) for key, value in waiting)
        total = int(waiting[0][1]["total"])
        first_seen = min(float(value["at"]) for _, value in waiting)
        decoded = [decode_deliver_sm(pdu) for _, pdu in parts]
        await self._store(parts, total, decoded[0], first_seen)
        for key, value in waiting:
            self._ctx.state.put(DONE + decode_deliver_sm(bytes.fromhex(value["pdu"])).content_digest(), {"at": now})
            self._ctx.state.delete(key)

    async def _store(self, parts: Sequence[tuple[int, bytes]], total: int, first: DeliverSm, first_seen: float) -> None:
        digest = group_digest([pdu for _, pdu in parts])
        seen_key = SEEN + digest[:40]
        seen = self._ctx.state.get(seen_key)
        if seen is not None and self._clock() - float(seen["first_seen"]) < DEDUP_WINDOW_S:
            first_seen = float(seen["first_seen"])
        else:
            # Written before the inbox row: a crash after the commit but before our resp
            # must give the SMSC's redelivery this same first-seen time, hence the same id.
            self._ctx.state.put(seen_key, {"first_seen": first_seen})
        doc = RawDocument(
            external_id=message_id(digest, first.source_addr, first_seen),
            default_alphabet=self._alphabet,
            first_seen=first_seen,
            parts=tuple(parts),
            total=total,
            source_addr=first.source_addr,
            destination_addr=first.destination_addr,
        )
        # A receipt goes in as pending, not ignored: the worker runs ``receipts`` on it (our reply's delivery
        # status) and then ``parse`` raises IgnoredMessage, which files it as ignored.
        item = InboxItem("sms", PROVIDER, doc.external_id, doc.to_bytes(), meta=doc.meta())
        accepted = await self._ctx.accept(item)
        event = EVENT_INCOMPLETE if doc.missing else EVENT_STORED
        log.info(event, inbox_id=accepted.inbox_id, duplicate=accepted.duplicate, parts=total, missing=doc.missing)

    async def sweep(self) -> None:
        """Stores groups that waited past the timeout (incomplete) or that are complete but were not stored."""
        async with self._lock:
            now = self._clock()
            groups: dict[str, list[tuple[str, Any]]] = defaultdict(list)
            for key, value in self._ctx.state.items(PART):
                groups[key.rsplit(":", 1)[0]].append((key, value))
            for waiting in groups.values():
                oldest = min(float(value["at"]) for _, value in waiting)
                if len(waiting) >= int(waiting[0][1]["total"]) or now - oldest >= self._timeout:
                    await self._complete(waiting)
            if now - self._last_housekeeping >= HOUSEKEEPING_EVERY_S:
                self._forget_older(SEEN, "first_seen", now - DEDUP_WINDOW_S)
                self._forget_older(DONE, "at", now - DONE_WINDOW_S)
                self._last_housekeeping = now

    def _forget_older(self, prefix: str, field: str, cutoff: float) -> None:
        for key, value in self._ctx.state.items(prefix):
            if float(value[field]) < cutoff:
                self._ctx.state.delete(key)

    async def sweep_forever(self) -> None:
        interval = min(max(self._timeout / 4, 0.05), 30.0)
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # the store may be down; the parts stay put and we try again
                log.warning(EVENT_STORE_FAILED, during="sweep", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(interval)
