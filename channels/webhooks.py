"""The one way a signed provider webhook is taken: verify, split into inbox rows, accept each, answer.

``verify`` raises ``AuthError`` (403, nothing stored); ``items_of`` raises
``PayloadError`` for a signed body it cannot read (400: retrying will not
help); a store that will not commit answers 503, which providers retry, and
rows already stored dedup then. Only after every row is committed does the
provider hear ``answer``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from fastapi.responses import PlainTextResponse, Response

from channels.base import ChannelContext, InboxItem
from normalizer.errors import AuthError, PayloadError, StoreUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EdgeEvents:
    """A channel's log event names, e.g. ``line.rejected``."""

    rejected: str
    malformed: str
    accepted: str
    accept_failed: str

    @classmethod
    def of(cls, channel: str) -> EdgeEvents:
        return cls(f"{channel}.rejected", f"{channel}.malformed", f"{channel}.accepted", f"{channel}.accept_failed")


async def take(
    raw: bytes,
    headers: Mapping[str, str],
    verify: Callable[[bytes, Mapping[str, str]], None],
    items_of: Callable[[bytes], list[InboxItem]],
    ctx: ChannelContext,
    events: EdgeEvents,
    answer: str = "ok",
) -> Response:
    try:
        verify(raw, headers)
    except AuthError as exc:
        log.warning(events.rejected, reason=str(exc))
        return PlainTextResponse("invalid signature", status_code=403)
    try:
        items = items_of(raw)
    except PayloadError as exc:
        log.warning(events.malformed, error=str(exc))
        return PlainTextResponse(str(exc), status_code=400)
    try:
        for item in items:
            accepted = await ctx.accept(item)
            log.info(events.accepted, external_id=item.external_id, duplicate=accepted.duplicate)
    except StoreUnavailable:
        raise  # the gateway answers every edge's "try later" (503 + Retry-After) and logs the outage once
    except Exception:
        log.exception(events.accept_failed)
        return PlainTextResponse("try again", status_code=503)
    return PlainTextResponse(answer)
