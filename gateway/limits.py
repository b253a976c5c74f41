"""What a client may cost us before it is refused: body size, read time, connections.

``BodyLimit`` is a pure ASGI middleware in front of every route: a declared
``Content-Length`` over the route's limit gets 413 before the app runs at all,
and a chunked (or lying) body gets 413 as soon as the bytes read pass it, so no
handler, signature check or parser ever holds more than the limit. The same
middleware bounds how long reading the body may take (408).

``GuardedHttpToolsProtocol`` is uvicorn's httptools protocol (the fast one ``serve`` uses) with a
deadline on the request head: uvicorn itself waits for headers forever (a byte every few seconds
keeps even a keep-alive connection open), so a slow-headers client is closed after
``http.header_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import logs
from gateway.web.security import CSP

if TYPE_CHECKING:
    from gateway.config import HttpConfig

log = structlog.get_logger(__name__)

# Where a provider's own maximum is known, its webhook gets that limit instead of http.max_body_bytes:
# Twilio, Kannel and Jasmin post one SMS (1,600 characters at most, media as URLs) as a small form;
# a Telegram update is one message (4,096 characters, files by id); Meta documents webhook payloads
# of up to 3 MB (batched notifications); the CSV import posts a 2 MiB file, and again base64-encoded.
ROUTE_LIMITS: dict[str, int] = {
    "/webhooks/twilio": 64 * 1024,
    "/webhooks/kannel": 64 * 1024,
    "/webhooks/jasmin": 64 * 1024,
    "/webhooks/telegram": 256 * 1024,
    "/webhooks/whatsapp": 3 * 1024 * 1024,
    "/impor": 10 * 1024 * 1024,
}


def limit_for(path: str, default: int, overrides: Mapping[str, int]) -> int:
    """The body limit of ``path``: the longest matching prefix of the overrides, then of ROUTE_LIMITS."""
    for table in (overrides, ROUTE_LIMITS):
        matches = [prefix for prefix in table if path == prefix or path.startswith(prefix.rstrip("/") + "/")]
        if matches:
            return table[max(matches, key=len)]
    return default


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# A browser (a form post, or asking for HTML) gets a page it can show; everyone else the API's JSON.
_PAGE_TITLES = {413: "Kiriman terlalu besar", 408: "Kiriman terlalu lama"}
_PAGE_TEXT = {
    413: "Kiriman lebih dari {limit} byte. Kirim berkas yang lebih kecil atau lebih sedikit, lalu coba lagi.",
    408: "Kiriman tidak selesai diterima dalam {timeout:g} detik. Periksa sambungan, lalu coba lagi.",
}
_FORM_TYPES = (b"multipart/form-data", b"application/x-www-form-urlencoded")


def _wants_page(scope: Scope) -> bool:
    headers = dict(scope.get("headers", []))
    return headers.get(b"content-type", b"").lower().startswith(_FORM_TYPES) or b"text/html" in headers.get(
        b"accept", b""
    )


async def _answer(send: Send, status: int, detail: str, page: str | None = None, own: bytes | None = None) -> None:
    """JSON naming the limit; for a browser a short page saying it; where a route has a page of its own
    for it (``pages``: the citizens' form), that page."""
    if own is not None:
        body = own
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]
    elif page is None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json")]
    else:
        title = _PAGE_TITLES.get(status, "Kiriman ditolak")
        body = (
            f'<!doctype html><html lang="id"><meta charset="utf-8"><title>{title}</title>'
            f"<h1>{title}</h1><p>{html.escape(page)}</p></html>"
        ).encode()
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
            (b"x-content-type-options", b"nosniff"),
        ]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Reading:
    read: int = 0
    done: bool = False
    started: bool = False
    refused: _Refused | None = None


class BodyLimit:
    """ASGI middleware: 413 past the route's byte limit, 408 past the body read deadline."""

    def __init__(
        self,
        app: ASGIApp,
        default: int,
        overrides: Mapping[str, int] | None = None,
        body_timeout_s: float = 30.0,
        pages: Mapping[str, bytes] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.overrides = dict(overrides or {})
        self.body_timeout_s = body_timeout_s
        # Path prefix -> the HTML a person is shown for a 413 there (the citizens' form), instead of JSON.
        self.pages = dict(pages or {})

    def _own_page(self, path: str, status: int) -> bytes | None:
        if status != 413:
            return None
        matches = [prefix for prefix in self.pages if path == prefix or path.startswith(prefix.rstrip("/") + "/")]
        return self.pages[max(matches, key=len)] if matches else None

    def _page(self, scope: Scope, status: int, limit: int) -> str | None:
        if not _wants_page(scope):
            return None
        return _PAGE_TEXT[status].format(limit=limit, timeout=self.body_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = limit_for(path, self.default, self.overrides)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            log.warning(logs.HTTP_BODY_REFUSED, path=path, limit=limit, declared=declared)
            await _answer(
                send, 413, f"body is over {limit} bytes", self._page(scope, 413, limit), self._own_page(path, 413)
            )
            return

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        state = _Reading()

        async def limited_receive() -> Message:
            if state.refused is not None:
                raise state.refused
            if state.done:
                return await receive()  # after the body: only the disconnect, no deadline
            try:
                # timeout_at arms one timer for the await; wait_for would make a task of every receive.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                state.refused = _Refused(408, f"body not received within {self.body_timeout_s:g} s")
                raise state.refused from None
            if message["type"] == "http.request":
                state.read += len(message.get("body", b""))
                if state.read > limit:
                    state.refused = _Refused(413, f"body is over {limit} bytes")
                    raise state.refused
                state.done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            # Once refused, whatever the app answers (it may have caught the error) is not sent.
            if state.refused is not None:
                return
            if message["type"] == "http.response.start":
                state.started = True
            await send(message)

        with contextlib.suppress(_Refused):
            await self.app(scope, limited_receive, guarded_send)
        if state.refused is not None:
            log.warning(logs.HTTP_BODY_REFUSED, path=path, limit=limit, read=state.read, status=state.refused.status)
            if not state.started:
                page = self._page(scope, state.refused.status, limit)
                own = self._own_page(path, state.refused.status)
                await _answer(send, state.refused.status, state.refused.detail, page, own)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            # A malformed length is h11's to refuse; beyond 64 bits it is over any limit.
            return int(text) if text.isdigit() else None
    return None


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (the fast one ``serve`` uses) with a deadline for the request head
    (from connect, and after each response)."""

    header_timeout_s: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()  # the head arrived: from here BodyLimit times the body
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a request whose head already arrived starts now: no deadline over it
        super().on_response_complete()
        if not self.transport.is_closing() and not pipelined:
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info(logs.HTTP_HEADER_TIMEOUT, client=self.client[0] if self.client else None)
            self.transport.close()


def set_head_deadline(http: HttpConfig) -> None:
    """The head deadline of this process's connections. A class attribute, not a class made per config:
    ``serve --workers N`` hands uvicorn the protocol by import path, and each child sets it from its config."""
    GuardedHttpToolsProtocol.header_timeout_s = http.header_timeout_s


def server_options(http: HttpConfig) -> dict[str, Any]:
    """The uvicorn.run keywords that bound slow and numerous clients (documented in docs/http-limits.md)."""
    set_head_deadline(http)
    return {
        "http": f"{__name__}:GuardedHttpToolsProtocol",
        "timeout_keep_alive": http.keep_alive_s,
        "limit_concurrency": http.max_connections,
        "timeout_graceful_shutdown": 10,
        # uvicorn's own handlers print tracebacks over many lines: its loggers go to ours (gateway/logs.py).
        "log_config": None,
    }
