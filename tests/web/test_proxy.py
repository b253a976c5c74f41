"""Behind a reverse proxy on another host: its X-Forwarded-Proto counts only when it is in http.trusted_proxies.

The gateway runs with the uvicorn options `serve` uses; the proxy is played by requests from other
loopback addresses (127.0.0.2 trusted, 127.0.0.3 not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from gateway.config import Config
from gateway.serving import build_app, uvicorn_options
from tests.channels.sms_http_support import serve_app
from tests.support.server import free_port
from tests.web.support import quiet_channels


@pytest.fixture
def behind_proxy(make_config: Callable[..., Config]) -> Iterator[str]:
    port = free_port()
    config = make_config(channels=quiet_channels(), http={"port": port, "trusted_proxies": ["127.0.0.2"]})
    with serve_app(build_app(config), port, options=uvicorn_options(config)) as url:
        yield url


def login_cookie(url: str, source: str) -> str:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.get(f"{url}/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"].lower()


def test_a_trusted_proxy_makes_the_cookie_secure_and_a_stranger_does_not(behind_proxy: str) -> None:
    assert "secure" in login_cookie(behind_proxy, "127.0.0.2")  # the proxy in http.trusted_proxies
    assert "secure" not in login_cookie(behind_proxy, "127.0.0.3")  # anyone else saying "https"
