"""Test helpers shared by the Twilio, Kannel and Jasmin tests.

``MemoryInbox`` stands in for the gateway's inbox behind ``ctx.accept`` (same
dedup key), ``ProviderServer`` is a real HTTP server on 127.0.0.1 standing in
for a provider's API and recording every call, ``serve_app`` runs an ASGI app
under uvicorn on a free loopback port (for daemons such as Kannel to call).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI

from channels.base import Accepted, ChannelContext, InboxItem
from tests.support.fakes import Locks, MemoryState, SavedFiles

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MemoryInbox:
    """The inbox's contract in memory: one row per (channel, provider, external_id)."""

    def __init__(self) -> None:
        self.items: list[InboxItem] = []
        self._ids: dict[tuple[str, str, str], int] = {}
        self.calls = 0
        self.fail_with: Exception | None = None
        self.failures_left = -1  # with fail_with: fail this many calls (-1: every call)

    async def accept(self, item: InboxItem) -> Accepted:
        self.calls += 1
        if self.fail_with is not None and self.failures_left != 0:
            self.failures_left -= 1
            raise self.fail_with
        key = (item.channel, item.provider, item.external_id)
        if key in self._ids:
            return Accepted(inbox_id=self._ids[key], duplicate=True)
        self.items.append(item)
        self._ids[key] = len(self.items)
        return Accepted(inbox_id=len(self.items), duplicate=False)


def make_context(
    inbox: MemoryInbox,
    *,
    public_url: str = "",
    http: httpx.AsyncClient | None = None,
    saved: SavedFiles | None = None,
    data_dir: Path = Path("/nonexistent"),
) -> ChannelContext:
    return ChannelContext(
        accept=inbox.accept,
        public_url=public_url,
        data_dir=data_dir,
        state=MemoryState(),
        save_attachment=saved if saved is not None else SavedFiles(),
        exclusive=Locks(),
        http=http if http is not None else httpx.AsyncClient(),
    )


def app_with(router: APIRouter) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    return app


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: bytes
    headers: dict[str, str]
    body: bytes


@dataclass
class Canned:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


class ProviderServer:
    """A provider's HTTP API on 127.0.0.1: answers what it is told per path, records every call."""

    def __init__(self) -> None:
        self.calls: list[Recorded] = []
        self.answers: dict[str, Canned] = {}
        self.default = Canned()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.calls.append(
                    Recorded(
                        method=self.command,
                        path=parts.path,
                        query=parts.query.encode("latin-1"),
                        headers={key.lower(): value for key, value in self.headers.items()},
                        body=body,
                    )
                )
                answer = server.answers.get(parts.path, server.default)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextmanager
def serve_app(app: FastAPI, port: int | None = None, *, lifespan: bool = False) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a thread (the gateway's app with its lifespan); yields its URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on" if lifespan else "off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run(coro: Any) -> Any:
    """Run one coroutine to completion (the tests stay plain functions, no async plugin needed)."""
    return asyncio.run(coro)
