"""Test helpers shared by the Twilio, Kannel and Jasmin tests.

``MemoryInbox`` stands in for the gateway's inbox behind ``ctx.accept`` (same
dedup key), ``serve_app`` runs an ASGI app under uvicorn on a free loopback port
(for daemons such as Kannel to call). The providers' APIs: tests/support/provider_api.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI

from channels.base import Accepted, ChannelContext, InboxItem
from channels.media import MediaLimits
from tests.support.fakes import Locks, MemoryState, SavedFiles
from tests.support.server import free_port

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads"


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
    media: MediaLimits | None = None,
) -> ChannelContext:
    return ChannelContext(
        accept=inbox.accept,
        public_url=public_url,
        data_dir=data_dir,
        state=MemoryState(),
        save_attachment=saved if saved is not None else SavedFiles(),
        exclusive=Locks(),
        http=http if http is not None else httpx.AsyncClient(),
        # The provider stand-ins listen on loopback, which production refuses.
        media=media if media is not None else MediaLimits(allow_private_hosts=True),
    )


def app_with(router: APIRouter) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    return app


@contextmanager
def serve_app(
    app: FastAPI, port: int | None = None, *, lifespan: bool = False, options: dict[str, Any] | None = None
) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a thread (the gateway's app with its lifespan); yields its URL.

    ``options`` are more uvicorn.Config keywords (e.g. the ones ``serve`` uses, gateway/serving.py).
    """
    port = port or free_port()
    given = {"host": "127.0.0.1", "port": port, "log_level": "warning", "lifespan": "on" if lifespan else "off"}
    config = uvicorn.Config(app, **{**given, **(options or {})})
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
