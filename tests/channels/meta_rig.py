"""Test rig for the chat channels (WhatsApp and Telegram tests both use it).

- ``FakeProviderApi``: a real HTTP server on 127.0.0.1 (free port) standing in
  for Meta's Graph API or Telegram's Bot API; it records every request and
  answers from canned responses.
- ``MemoryInbox``: an ``Accept`` that dedups on (channel, provider,
  external_id) the way the real inbox's unique constraint does.
- ``make_context``: a ``ChannelContext`` built from those pieces.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from channels.base import Accepted, ChannelContext, InboxItem
from tests.support.fakes import Locks, MemoryState, SavedFiles


@dataclass(frozen=True)
class Canned:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Canned:
        return cls(status=status, body=json.dumps(data).encode())


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """A urlencoded form body, as the gateway's aiogram session sends Bot API calls."""
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


class FakeProviderApi:
    """Routes (method, path) to a queue of canned answers; the last answer repeats."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Canned]] = {}
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=body,
                )
                answer = api._answer(recorded)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads ``requests`` instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, method: str, path: str, *answers: Canned) -> None:
        with self._lock:
            self._routes[(method, path)] = list(answers)

    def seen(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def _answer(self, recorded: Recorded) -> Canned:
        with self._lock:
            self.requests.append(recorded)
            queue = self._routes.get((recorded.method, recorded.path))
            if not queue:
                return Canned.json({"error": f"no route for {recorded.method} {recorded.path}"}, status=404)
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def start(self) -> FakeProviderApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def unreachable_url() -> str:
    """A loopback URL nothing listens on: a port bound, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def fake_provider_api() -> Iterator[FakeProviderApi]:
    api = FakeProviderApi().start()
    try:
        yield api
    finally:
        api.stop()


@dataclass
class MemoryInbox:
    """The inbox's dedup contract without a database; ``fail`` makes every accept raise."""

    items: dict[tuple[str, str, str], InboxItem] = field(default_factory=dict)
    fail: bool = False

    async def __call__(self, item: InboxItem) -> Accepted:
        if self.fail:
            raise RuntimeError("database unavailable")
        key = (item.channel, item.provider, item.external_id)
        duplicate = key in self.items
        self.items.setdefault(key, item)
        return Accepted(inbox_id=list(self.items).index(key) + 1, duplicate=duplicate)

    @property
    def keys(self) -> list[str]:
        return [external_id for _, _, external_id in self.items]


def make_context(
    http: httpx.AsyncClient,
    inbox: MemoryInbox | None = None,
    files: SavedFiles | None = None,
    state: MemoryState | None = None,
    locks: Locks | None = None,
) -> ChannelContext:
    return ChannelContext(
        accept=inbox if inbox is not None else MemoryInbox(),
        public_url="https://lapor.example.go.id",
        data_dir=Path("/nonexistent"),
        state=state if state is not None else MemoryState(),
        save_attachment=files if files is not None else SavedFiles(),
        exclusive=locks if locks is not None else Locks(),
        http=http,
    )


async def wait_until(condition: Any, attempts: int = 500) -> None:
    """Yield to the loop until ``condition()`` holds (a bounded wait, not a timing assertion)."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")
