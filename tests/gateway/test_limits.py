"""Body size and read-time limits on every route, and the deadline on a request's head."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from gateway.config import Config, parse_config
from gateway.limits import BodyLimit, limit_for, server_options, set_head_deadline
from tests.support.server import free_port

KANNEL = {"kannel": {"enabled": True, "secret": "s3cret"}, "smtp": {"enabled": False}}


def test_route_limits_take_the_longest_prefix_and_config_first() -> None:
    assert limit_for("/webhooks/kannel", 1000, {}) == 64 * 1024
    assert limit_for("/webhooks/whatsapp", 1000, {}) == 3 * 1024 * 1024
    assert limit_for("/api/v1/complaints", 1000, {}) == 1000
    assert limit_for("/webhooks/kannelx", 1000, {}) == 1000  # a prefix is a path segment, not a string start
    assert limit_for("/webhooks/kannel", 1000, {"/webhooks": 10, "/webhooks/kannel": 20}) == 20


def test_declared_length_over_the_limit_is_413_before_the_secret_check(
    running_client: Callable[[Config], TestClient], make_config: Callable[..., Config]
) -> None:
    with running_client(make_config(channels=KANNEL)) as client:
        response = client.post("/webhooks/kannel?secret=wrong", content=b"x" * (64 * 1024 + 1))
        assert response.status_code == 413
        assert response.json() == {"detail": f"body is over {64 * 1024} bytes"}
        # Under the limit the request reaches the channel, which refuses the wrong secret.
        assert client.post("/webhooks/kannel?secret=wrong", content=b"x" * 1000).status_code == 403


def test_chunked_body_over_the_limit_is_413(
    running_client: Callable[[Config], TestClient], make_config: Callable[..., Config]
) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(200):  # 12.8 MB if it were all read
            sent.append(1)
            yield b"y" * 65536

    with running_client(make_config(channels=KANNEL)) as client:
        response = client.post("/webhooks/kannel?secret=s3cret", content=chunks())
    assert response.status_code == 413


def test_every_route_has_the_default_limit(
    running_client: Callable[[Config], TestClient], make_config: Callable[..., Config]
) -> None:
    with running_client(make_config(http={"max_body_bytes": 100})) as client:
        assert client.post("/login", content=b"u" * 101).status_code == 413
        assert client.post("/healthz", content=b"u" * 101).status_code == 413
        assert client.post("/healthz", content=b"u" * 100).status_code == 405


def test_a_browser_form_over_the_limit_gets_a_page_it_can_show(
    running_client: Callable[[Config], TestClient], make_config: Callable[..., Config]
) -> None:
    with running_client(make_config(http={"max_body_bytes": 100})) as client:
        refused = client.post("/login", data={"username": "u" * 200})
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("text/html")
    assert "<h1>Kiriman terlalu besar</h1>" in refused.text and "100 byte" in refused.text
    assert refused.headers["content-security-policy"].startswith("default-src 'none'")


async def _drive(middleware: BodyLimit, chunks: list[bytes], stalls: bool = False) -> tuple[list[Message], int]:
    """Run the middleware over a body arriving in ``chunks``; the app reads it all. Returns (sent, chunks read)."""
    queue = list(chunks)
    read = 0

    async def receive() -> Message:
        nonlocal read
        if not queue:
            if stalls:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}
        read += 1
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue) or stalls}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware({"type": "http", "path": "/x", "headers": []}, receive, send)
    return sent, read


async def _reads_all(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _swallows_errors(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that catches everything around its read (as a careless handler might) and answers 503."""
    try:
        while (await receive()).get("more_body"):
            pass
    except Exception:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"try again"})


def test_chunked_body_stops_being_read_at_the_limit() -> None:
    sent, read = asyncio.run(_drive(BodyLimit(_reads_all, default=100_000), [b"z" * 65536] * 800))
    assert sent[0]["status"] == 413
    assert read == 2  # the chunk that crossed 100,000 bytes is the last one taken, of 800 (52 MB)


def test_an_app_that_swallows_the_refusal_still_answers_413() -> None:
    sent, _ = asyncio.run(_drive(BodyLimit(_swallows_errors, default=10), [b"z" * 8, b"z" * 8]))
    assert [message.get("status") for message in sent if message["type"] == "http.response.start"] == [413]


def test_a_body_slower_than_the_deadline_is_408() -> None:
    sent, _ = asyncio.run(_drive(BodyLimit(_reads_all, default=1000, body_timeout_s=0.2), [b"a"], stalls=True))
    assert sent[0]["status"] == 408


def test_a_body_under_the_limit_goes_through() -> None:
    sent, read = asyncio.run(_drive(BodyLimit(_reads_all, default=100), [b"a" * 50, b"b" * 50]))
    assert (sent[0]["status"], read) == (200, 2)


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def guarded_server() -> Iterator[tuple[int, Config]]:
    """``serve``'s uvicorn options (httptools with the head deadline) on a free port."""
    config = parse_config({"http": {"header_timeout_s": 0.5, "keep_alive_s": 600, "max_connections": 50}})
    options = server_options(config.http)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_hello, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield port, config
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        set_head_deadline(parse_config({}).http)  # the deadline is a class attribute: back to the default


def _closed_by_server(sock: socket.socket, trickle: bytes = b"", within_s: float = 30.0) -> bool:
    """Whether the server closes ``sock`` while we trickle ``trickle`` a byte at a time (or send nothing)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + within_s
    position = 0
    while time.monotonic() < deadline:
        if position < len(trickle):
            try:
                sock.sendall(trickle[position : position + 1])
            except OSError:
                return True
            position += 1
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return True
        if data == b"":
            return True
    return False


def test_a_connection_that_sends_nothing_is_closed(guarded_server: tuple[int, Any]) -> None:
    port, _ = guarded_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert _closed_by_server(sock)


def test_slow_headers_are_closed_even_while_bytes_trickle(guarded_server: tuple[int, Any]) -> None:
    port, _ = guarded_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert _closed_by_server(sock, trickle=b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000)


@pytest.mark.parametrize("keep_alive", [True, False])
def test_a_prompt_request_is_answered_and_an_idle_connection_closed_at_the_head_deadline(
    guarded_server: tuple[int, Any], keep_alive: bool
) -> None:
    port, _ = guarded_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + (b"" if keep_alive else b"Connection: close\r\n") + b"\r\n")
        sock.settimeout(30)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # keep_alive_s is 600 here: only the head deadline can close the kept-alive connection.
        assert _closed_by_server(sock)


def test_a_pipelined_request_is_answered_whole(guarded_server: tuple[int, Any]) -> None:
    port, _ = guarded_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.settimeout(30)
        received = b""
        while (chunk := sock.recv(4096)) != b"":
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 2
