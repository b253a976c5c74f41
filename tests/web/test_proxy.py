"""Behind a reverse proxy on another host: its X-Forwarded-Proto counts only when it is in http.trusted_proxies.

The gateway runs with the uvicorn options `serve` uses; the proxy is played by requests from other
loopback addresses (127.0.0.2 trusted, 127.0.0.3 not).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn

from gateway.config import Config
from gateway.serving import build_app, uvicorn_options
from tests.support.server import free_port
from tests.web.support import quiet_channels


@pytest.fixture
def behind_proxy(make_config: Callable[..., Config]) -> Iterator[str]:
    port = free_port()
    config = make_config(channels=quiet_channels(), http={"port": port, "trusted_proxies": ["127.0.0.2"]})
    server = uvicorn.Server(uvicorn.Config(build_app(config), **uvicorn_options(config)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def login_cookie(url: str, source: str) -> str:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.get(f"{url}/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"].lower()


def test_a_trusted_proxy_makes_the_cookie_secure_and_a_stranger_does_not(behind_proxy: str) -> None:
    assert "secure" in login_cookie(behind_proxy, "127.0.0.2")  # the proxy in http.trusted_proxies
    assert "secure" not in login_cookie(behind_proxy, "127.0.0.3")  # anyone else saying "https"
