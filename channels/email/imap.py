"""IMAP poller (imapclient): for regions that keep a mailbox we must read.

One instance polls a mailbox (``ctx.exclusive``). Each new UID is fetched
with ``BODY.PEEK[]`` (nothing is marked read by a failed run), handed to the
inbox, and only after the inbox row is committed filed away: moved to
``processed_folder`` (created when missing) or flagged ``\\Seen``. The last
UID done is kept with the folder's UIDVALIDITY in ``ctx.state``; a crash
between the commit and the move fetches the mail again, and the inbox key
(the Message-ID) makes that a duplicate, not a second complaint.

imapclient is blocking: every IMAP call runs in a thread, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
from imapclient import IMAPClient
from imapclient.imapclient import SEEN
from pydantic import Field, SecretStr, model_validator

from channels.base import ChannelAdapter, ChannelContext, ChannelSettings, Reply, Sent
from channels.email import acks
from channels.email.acks import AckPolicy
from channels.email.mime import external_id, inbox_item, parse_mail
from channels.email.relay import RelaySettings, send_acknowledgement
from normalizer.types import ChannelMessage

log = structlog.get_logger(__name__)

PROVIDER = "imap"
CONNECTED = "imap.connected"
ACCEPTED = "imap.accepted"
UIDVALIDITY_CHANGED = "imap.uidvalidity_changed"
DISCONNECTED = "imap.disconnected"

# Servers may drop an IDLE after 30 minutes (RFC 2177): we re-issue it well before.
MAX_IDLE_SECONDS = 25 * 60
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0


class ImapSettings(ChannelSettings, AckPolicy):
    """``channels.imap``: the mailbox to read and where processed mail goes."""

    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)
    ssl: bool = True
    # A CA bundle for a server whose certificate the system does not trust (a regional CA, self-signed).
    ca_file: Path | None = None
    username: str = ""
    password: SecretStr = SecretStr("")
    folder: str = "INBOX"
    # Empty: leave mail in ``folder`` and flag it \Seen instead.
    processed_folder: str | None = "Processed"
    poll_seconds: float = Field(default=60.0, gt=0)
    relay: RelaySettings | None = None

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> ImapSettings:
        if self.enabled:
            for key in ("host", "username"):
                if not getattr(self, key):
                    raise ValueError(f"{key} is empty — the poller needs the mailbox's {key}")
        if self.processed_folder == self.folder:
            # Mail moved into the folder we read would come back under a new UID, forever.
            raise ValueError("processed_folder must differ from folder (or be empty to flag mail \\Seen)")
        return self

    @property
    def port_or_default(self) -> int:
        return self.port or (993 if self.ssl else 143)

    @property
    def mailbox(self) -> str:
        return f"{self.username}@{self.host}/{self.folder}"


@dataclass
class _Connection:
    """One logged-in IMAP session on ``folder``; only ever used by one thread at a time."""

    client: IMAPClient
    uidvalidity: int
    can_idle: bool
    can_move: bool
    can_uid_expunge: bool


def _connect(settings: ImapSettings) -> _Connection:
    context = ssl.create_default_context(cafile=str(settings.ca_file)) if settings.ssl and settings.ca_file else None
    client = IMAPClient(settings.host, port=settings.port_or_default, ssl=settings.ssl, ssl_context=context, timeout=60)
    try:
        client.login(settings.username, settings.password.get_secret_value())
        if settings.processed_folder and not client.folder_exists(settings.processed_folder):
            client.create_folder(settings.processed_folder)
        selected = client.select_folder(settings.folder)
        capabilities = set(client.capabilities())
    except BaseException:
        client.shutdown()
        raise
    return _Connection(
        client=client,
        uidvalidity=int(selected[b"UIDVALIDITY"]),
        can_idle=b"IDLE" in capabilities,
        can_move=b"MOVE" in capabilities,
        can_uid_expunge=b"UIDPLUS" in capabilities,
    )


def _uids_after(connection: _Connection, last_uid: int) -> list[int]:
    # "n:*" always matches the highest UID, even below n: filter.
    found = connection.client.search(["UID", f"{last_uid + 1}:*"])
    return sorted(uid for uid in found if uid > last_uid)


def _fetch(connection: _Connection, uid: int) -> bytes | None:
    fetched = connection.client.fetch([uid], [b"BODY.PEEK[]"])
    body = fetched.get(uid, {}).get(b"BODY[]")
    return body if isinstance(body, bytes) else None


def _file_away(connection: _Connection, uid: int, processed_folder: str | None) -> None:
    client = connection.client
    if not processed_folder:
        client.add_flags([uid], [SEEN])
    elif connection.can_move:
        client.move([uid], processed_folder)
    else:
        client.copy([uid], processed_folder)
        client.delete_messages([uid])
        # Without UIDPLUS a plain EXPUNGE also removes what someone else marked \Deleted: that is what they asked for.
        client.expunge([uid] if connection.can_uid_expunge else None)


def _idle(connection: _Connection, seconds: float) -> None:
    connection.client.idle()
    try:
        connection.client.idle_check(timeout=seconds)
    finally:
        connection.client.idle_done()


def _abort(connection: _Connection) -> None:
    """Drop the connection at once, waking a thread blocked in IDLE on it."""
    with contextlib.suppress(OSError):
        connection.client.socket().shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        connection.client.shutdown()


def _logout(connection: _Connection) -> None:
    try:
        connection.client.logout()
    except Exception:  # already gone: nothing left to be polite to
        _abort(connection)


def _state_key(settings: ImapSettings) -> str:
    return f"imap:{settings.mailbox}"


def _last_uid(ctx: ChannelContext, settings: ImapSettings, uidvalidity: int) -> int:
    state = ctx.state.get(_state_key(settings))
    if not isinstance(state, Mapping):
        return 0
    if state.get("uidvalidity") != uidvalidity:
        # The server renumbered the folder: start over; the inbox key turns re-reads into duplicates.
        log.warning(UIDVALIDITY_CHANGED, host=settings.host, folder=settings.folder)
        ctx.state.put(_state_key(settings), {"uidvalidity": uidvalidity, "last_uid": 0})
        return 0
    return int(state.get("last_uid") or 0)


async def _drain(connection: _Connection, settings: ImapSettings, ctx: ChannelContext) -> int:
    """Accept and file away every mail newer than the last UID done; how many were new."""
    last_uid = _last_uid(ctx, settings, connection.uidvalidity)
    count = 0
    for uid in await asyncio.to_thread(_uids_after, connection, last_uid):
        raw = await asyncio.to_thread(_fetch, connection, uid)
        if raw is not None:  # None: expunged by someone else since the search
            meta = {"uid": uid, "uidvalidity": connection.uidvalidity, "folder": settings.folder}
            accepted = await ctx.accept(inbox_item(raw, meta, PROVIDER))
            log.info(ACCEPTED, inbox_id=accepted.inbox_id, duplicate=accepted.duplicate, uid=uid)
            await asyncio.to_thread(_file_away, connection, uid, settings.processed_folder)
            count += 1
        ctx.state.put(_state_key(settings), {"uidvalidity": connection.uidvalidity, "last_uid": uid})
    return count


async def poll_once(settings: ImapSettings, ctx: ChannelContext) -> int:
    """Connect, take every new mail, log out (CLI runs and tests); how many were taken."""
    connection = await asyncio.to_thread(_connect, settings)
    try:
        taken = await _drain(connection, settings, ctx)
    except BaseException:
        _abort(connection)
        raise
    await asyncio.to_thread(_logout, connection)
    return taken


async def _wait_for_mail(connection: _Connection, settings: ImapSettings) -> None:
    if connection.can_idle:
        await asyncio.to_thread(_idle, connection, min(settings.poll_seconds, MAX_IDLE_SECONDS))
    else:
        await asyncio.sleep(settings.poll_seconds)


async def serve(settings: ImapSettings, ctx: ChannelContext) -> None:
    """Poll forever (IDLE when the server has it), reconnecting with backoff."""
    async with ctx.exclusive(f"imap:{settings.mailbox}"):
        backoff = BACKOFF_FIRST_SECONDS
        while True:
            connection: _Connection | None = None
            try:
                connection = await asyncio.to_thread(_connect, settings)
                log.info(CONNECTED, host=settings.host, folder=settings.folder, idle=connection.can_idle)
                while True:
                    # Until a pass finds nothing: mail that came during a pass is taken before we wait.
                    while await _drain(connection, settings, ctx):
                        pass
                    backoff = BACKOFF_FIRST_SECONDS
                    await _wait_for_mail(connection, settings)
            except Exception as exc:  # network, server or store trouble: the mail stays, we come back
                log.warning(
                    DISCONNECTED, host=settings.host, error=f"{exc.__class__.__name__}: {exc}", retry_in=backoff
                )
            finally:
                # Not a polite LOGOUT: a thread may still sit in IDLE on this connection.
                if connection is not None:
                    _abort(connection)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    return parse_mail(raw, meta, PROVIDER)


async def send(reply: Reply, settings: ImapSettings, client: httpx.AsyncClient) -> Sent:
    return await send_acknowledgement(reply, settings.relay, "channels.imap")


ADAPTER = ChannelAdapter(
    name="imap",
    provider=PROVIDER,
    settings=ImapSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    service=serve,
    enrich=acks.enrich,
)
