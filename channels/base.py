"""The one shape every channel has.

A channel module defines a settings model, ``verify``, ``external_id``,
``parse`` and ``send`` and exports them as one ``ChannelAdapter``; the gateway
lists the adapters in its registry (``gateway/registry.py``) and knows nothing
else about any single channel.

Edges hand the gateway an ``InboxItem`` through an ``Accept`` callable: it
returns only after the row is committed, which is when the edge may answer
its provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from channels.media import MediaLimits
from normalizer.types import Attachment, ChannelMessage

if TYPE_CHECKING:
    from fastapi import APIRouter


class ChannelSettings(BaseModel):
    """Base for every channel's settings: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # The channels page warns when a channel that usually flows has been quiet this long (None: the default).
    silence_alert_minutes: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class InboxItem:
    """What an edge hands to the inbox: the raw payload, untouched."""

    channel: str
    provider: str
    external_id: str
    raw: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    # A row the edge already knows is nothing to process (a notification with
    # no content) is kept for provenance but stored as ignored: the worker never
    # sees it. Receipts are not this case: they go in pending so the worker runs
    # the channel's ``receipts`` hook, and ``parse`` raises ``IgnoredMessage``.
    ignored_reason: str | None = None


@dataclass(frozen=True)
class Accepted:
    inbox_id: int
    duplicate: bool


class Accept(Protocol):
    async def __call__(self, item: InboxItem) -> Accepted: ...


@dataclass(frozen=True)
class Reply:
    """A message to send back to a citizen, as stored in the outbox."""

    channel: str
    provider: str
    to: str
    text: str
    idempotency_key: str
    tracking_id: str | None = None
    in_reply_to: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    """What the provider said when it took a reply."""

    provider_message_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A provider's word on a reply we sent (delivered, read, failed)."""

    provider_message_id: str
    status: str
    error: str | None = None


class StateStore(Protocol):
    """Small durable key/value state for listeners and pollers.

    IMAP keeps UIDVALIDITY/UID here, Telegram its update offset, SMPP the
    parts of a concatenated message until it is complete.
    """

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...

    def items(self, prefix: str) -> list[tuple[str, Any]]: ...


class SaveAttachment(Protocol):
    """Keeps an attachment's bytes (files under ``data/attachments/`` by sha256)."""

    def __call__(self, data: bytes, filename: str | None, content_type: str | None) -> Attachment: ...


@dataclass(frozen=True)
class ChannelContext:
    """What the gateway lends a channel's edge: nothing channel-specific."""

    accept: Accept
    public_url: str
    data_dir: Path
    state: StateStore
    save_attachment: SaveAttachment
    # Held by exactly one gateway instance at a time (PostgreSQL advisory
    # lock on PG); single pollers and the SMPP bind run inside it.
    exclusive: Callable[[str], AbstractAsyncContextManager[None]]
    http: httpx.AsyncClient
    # The operator's ``media:`` limits, for ``channels.media.fetch_media``.
    media: MediaLimits = field(default_factory=MediaLimits)


Parse = Callable[[bytes, Mapping[str, Any]], list[ChannelMessage]]
ExternalId = Callable[[bytes, Mapping[str, Any]], str]
Send = Callable[[Reply, Any, httpx.AsyncClient], Awaitable[Sent]]
MakeRouter = Callable[[Any, ChannelContext], "APIRouter"]
Service = Callable[[Any, ChannelContext], Awaitable[None]]
# Runs in the worker after ``parse`` and before the store transaction: local
# I/O such as saving attachment bytes that came inside the payload (e-mail).
# Raise a retryable error to retry.
Enrich = Callable[[ChannelMessage, Any, ChannelContext], Awaitable[ChannelMessage]]
# Fetches one attachment a stored complaint still waits for, from the
# descriptor ``parse`` put in ``ChannelMessage.pending_media``, and saves it
# (``ctx.save_attachment``). Runs in a media job of its own, never before the
# complaint and its acknowledgement: ``ProviderError`` retries the job with
# backoff, ``ProviderRejected`` (gone, forbidden, refused) fails it for good.
FetchMedia = Callable[[Mapping[str, Any], Any, ChannelContext], Awaitable[Attachment]]
Receipts = Callable[[bytes, Mapping[str, Any]], list[Receipt]]


@dataclass(frozen=True)
class ChannelAdapter:
    """A channel as the gateway sees it.

    ``router`` mounts the channel's webhook endpoints; ``service`` is a
    long-running listener or poller (SMTP, IMAP, SMPP, Telegram polling),
    started by ``serve`` when the channel is enabled. ``enrich`` does local
    I/O that ``parse`` must not; ``fetch_media`` downloads one attachment in
    a job of its own after the complaint is stored; ``receipts`` turns a provider's
    delivery reports into outbox status updates. A channel without ``send``
    has nobody to answer on its own wire.
    """

    name: str
    provider: str
    settings: type[ChannelSettings]
    parse: Parse
    external_id: ExternalId
    send: Send | None = None
    router: MakeRouter | None = None
    service: Service | None = None
    enrich: Enrich | None = None
    receipts: Receipts | None = None
    fetch_media: FetchMedia | None = None
