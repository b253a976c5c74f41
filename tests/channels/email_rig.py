"""Test parts for the e-mail channel: a channel context over an in-memory or SQLite inbox, and a relay.

- ``MemoryInbox``: ``ctx.accept`` with the inbox's unique key, able to fail on purpose.
- ``SqliteInbox`` / ``JsonState``: the same, durable across a ``kill -9`` (the IMAP crash test
  runs the poller in a subprocess: ``python -m tests.channels.email_rig poll ...``).
- ``CapturingRelay``: a real aiosmtpd server on a free port that keeps what it is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from channels.base import Accepted, ChannelContext, InboxItem
from normalizer.errors import StoreUnavailable
from normalizer.types import Attachment
from tests.support.fakes import Locks, MemoryState


@dataclass
class MemoryInbox:
    """The inbox as an edge sees it: unique (channel, provider, external_id), Accepted back."""

    rows: dict[tuple[str, str, str], InboxItem] = field(default_factory=dict)
    calls: int = 0
    fail_next: int = 0

    async def accept(self, item: InboxItem) -> Accepted:
        self.calls += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise StoreUnavailable("database is locked (test)")
        key = (item.channel, item.provider, item.external_id)
        keys = list(self.rows)
        if key in self.rows:
            return Accepted(inbox_id=keys.index(key) + 1, duplicate=True)
        self.rows[key] = item
        return Accepted(inbox_id=len(self.rows), duplicate=False)

    def items(self) -> list[InboxItem]:
        return list(self.rows.values())


class JsonState(MemoryState):
    """State in a JSON file, written through on every put (survives kill -9)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if path.exists():
            self.values = json.loads(path.read_text())

    def put(self, key: str, value: Any) -> None:
        super().put(key, value)
        self.path.write_text(json.dumps(self.values))


class SqliteInbox:
    """An inbox row per mail in SQLite with the same unique key as the real one; committed before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, channel TEXT, provider TEXT,"
                " external_id TEXT, raw BLOB, UNIQUE (channel, provider, external_id))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, timeout=10)

    async def accept(self, item: InboxItem) -> Accepted:
        with contextlib.closing(self._connect()) as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO inbox (channel, provider, external_id, raw) VALUES (?, ?, ?, ?)",
                (item.channel, item.provider, item.external_id, item.raw),
            )
            if cursor.rowcount == 1:
                return Accepted(inbox_id=int(cursor.lastrowid or 0), duplicate=False)
            row = db.execute(
                "SELECT id FROM inbox WHERE channel = ? AND provider = ? AND external_id = ?",
                (item.channel, item.provider, item.external_id),
            ).fetchone()
            return Accepted(inbox_id=int(row[0]), duplicate=True)

    def external_ids(self) -> list[str]:
        with contextlib.closing(self._connect()) as db:
            return [row[0] for row in db.execute("SELECT external_id FROM inbox ORDER BY id")]


def saved_files(data_dir: Path) -> Any:
    def save(data: bytes, filename: str | None, content_type: str | None) -> Attachment:
        digest = hashlib.sha256(data).hexdigest()
        target = data_dir / "attachments" / digest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return Attachment(filename=filename, content_type=content_type, size=len(data), sha256=digest)

    return save


def make_context(
    accept: Any, data_dir: Path, state: MemoryState | None = None, locks: Locks | None = None
) -> ChannelContext:
    return ChannelContext(
        accept=accept,
        public_url="http://127.0.0.1:8080",
        data_dir=data_dir,
        state=state if state is not None else MemoryState(),
        save_attachment=saved_files(data_dir),
        exclusive=locks if locks is not None else Locks(),
        # Never used by the e-mail channel; a transport that fails loudly if it were.
        http=httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(599))),
    )


class _RelayHandler:
    def __init__(self, relay: CapturingRelay) -> None:
        self._relay = relay

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self._relay.refuse:
            return self._relay.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(message, EmailMessage)
        self._relay.received.append((envelope.mail_from or "", list(envelope.rcpt_tos), message))
        return "250 OK"


class CapturingRelay:
    """A real SMTP server on 127.0.0.1 (its own thread and loop) standing in for the operator's relay.

    With ``tls`` (cert, key) it offers STARTTLS; with ``credentials`` it requires AUTH, which
    aiosmtpd only offers after STARTTLS — as a submission server on port 587 does.
    """

    def __init__(self, tls: tuple[Path, Path] | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.received: list[tuple[str, list[str], EmailMessage]] = []
        self.refuse: dict[str, str] = {}
        self.logins: list[str] = []
        self.port = 0
        self._tls = tls
        self._credentials = credentials
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self._credentials
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        tls_context = None
        if self._tls is not None:
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(*self._tls)
        return SMTP(
            _RelayHandler(self),
            hostname="relay.test",
            tls_context=tls_context,
            authenticator=self._authenticate if self._credentials else None,
            auth_required=self._credentials is not None,
            loop=loop,
        )

    def start(self) -> None:
        self._thread.start()

        async def bind() -> asyncio.Server:
            loop = asyncio.get_running_loop()
            return await loop.create_server(lambda: self._protocol(loop), "127.0.0.1", 0)

        self._server = asyncio.run_coroutine_threadsafe(bind(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def running_relay(
    tls: tuple[Path, Path] | None = None, credentials: tuple[str, str] | None = None
) -> Iterator[CapturingRelay]:
    relay = CapturingRelay(tls, credentials)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


class _StopAfterAccepts:
    """Accept through SQLite, then after the n-th new mail say so and hang: the parent kills us there."""

    def __init__(self, inbox: SqliteInbox, hang_after: int, marker: Path) -> None:
        self._inbox = inbox
        self._hang_after = hang_after
        self._marker = marker
        self._new = 0

    async def accept(self, item: InboxItem) -> Accepted:
        accepted = await self._inbox.accept(item)
        self._new += 0 if accepted.duplicate else 1
        if self._new == self._hang_after:
            # Committed, not yet moved: exactly the window a crash must not turn into a duplicate.
            self._marker.write_text(item.external_id)
            await asyncio.Event().wait()
        return accepted


def _poll_main(arguments: argparse.Namespace) -> None:
    from channels.email.imap import ImapSettings, serve

    settings = ImapSettings.model_validate(json.loads(arguments.settings))
    accept = _StopAfterAccepts(SqliteInbox(Path(arguments.inbox)), arguments.hang_after, Path(arguments.marker))
    ctx = make_context(accept.accept, Path(arguments.data), JsonState(Path(arguments.state)))
    asyncio.run(serve(settings, ctx))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="run the IMAP poller against a SQLite inbox (crash tests)")
    sub = parser.add_subparsers(required=True)
    poll = sub.add_parser("poll")
    poll.add_argument("--settings", required=True, help="channels.imap block as JSON")
    poll.add_argument("--inbox", required=True)
    poll.add_argument("--state", required=True)
    poll.add_argument("--data", required=True)
    poll.add_argument("--marker", required=True)
    poll.add_argument("--hang-after", type=int, required=True)
    poll.set_defaults(run=_poll_main)
    parsed = parser.parse_args()
    parsed.run(parsed)
