"""channels/media.py: credentials only to the provider's hosts, no private targets, bounded size."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from channels.media import MAX_REDIRECTS, Fetched, MediaLimits, MediaRefused, fetch_media
from normalizer.errors import ProviderError, ProviderRejected
from tests.support.provider_api import ANY, Canned, ProviderApi

STRICT = MediaLimits()
BEARER = {"Authorization": "Bearer graph-token"}


def mock(handler: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]) -> httpx.AsyncClient:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(record))


def get(url: str, limits: MediaLimits = STRICT, client: httpx.AsyncClient | None = None, **kwargs: Any) -> Fetched:
    async def go() -> Fetched:
        async with client or httpx.AsyncClient() as http:
            return await fetch_media(http, url, limits, **kwargs)

    return asyncio.run(go())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/metrics",
        "http://localhost:8080/metrics",
        "http://[::1]/x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
    ],
)
def test_loopback_and_private_targets_are_refused_by_default(url: str) -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(MediaRefused, match=r"media\.allow_private_hosts"):
        get(url, client=mock(lambda r: httpx.Response(200), seen))
    assert seen == []  # refused before any connection


def test_private_targets_are_fetched_when_the_operator_allows_them() -> None:
    with ProviderApi() as api:
        api.route(ANY, "/m/1", Canned(body=b"jpeg", content_type="image/jpeg"))
        fetched = get(f"{api.url}/m/1", MediaLimits(allow_private_hosts=True))
    assert (fetched.data, fetched.content_type) == (b"jpeg", "image/jpeg")


def test_redirect_to_a_private_target_is_refused() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:8080/metrics"})

    with pytest.raises(MediaRefused):
        get("https://media.example.com/ME1", client=mock(handler, seen))
    assert [str(r.url) for r in seen] == ["https://media.example.com/ME1"]


def test_credentials_go_to_the_providers_hosts_only_and_not_across_a_redirect() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "lookaside.fbsbx.com":
            return httpx.Response(302, headers={"Location": "https://cdn.example.net/file"})
        return httpx.Response(200, content=b"bytes")

    client = mock(handler, seen)
    get("https://lookaside.fbsbx.com/x", client=client, credential_hosts=[".fbsbx.com"], headers=BEARER)
    assert [(r.url.host, r.headers.get("authorization")) for r in seen] == [
        ("lookaside.fbsbx.com", "Bearer graph-token"),
        ("cdn.example.net", None),
    ]


def test_basic_auth_is_applied_only_on_a_credential_host() -> None:
    seen: list[httpx.Request] = []
    client = mock(lambda r: httpx.Response(200, content=b"x"), seen)
    auth = httpx.BasicAuth("AC1", "token")
    get("https://api.twilio.com/Media/ME1", client=client, credential_hosts=["api.twilio.com"], auth=auth)
    client = mock(lambda r: httpx.Response(200, content=b"x"), seen)
    get("https://attacker.example/steal", client=client, credential_hosts=["api.twilio.com"], auth=auth)
    assert [r.headers.get("authorization", "").startswith("Basic ") for r in seen] == [True, False]


def test_relative_url_is_resolved_against_the_base() -> None:
    seen: list[httpx.Request] = []
    client = mock(lambda r: httpx.Response(200, content=b"x"), seen)
    get("/2010-04-01/Media/ME1", client=client, base_url="https://api.twilio.com")
    assert str(seen[0].url) == "https://api.twilio.com/2010-04-01/Media/ME1"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "/relative/without/base"])
def test_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(MediaRefused):
        get(url, client=mock(lambda r: httpx.Response(200), []))


def test_a_declared_size_over_the_cap_is_refused_before_reading() -> None:
    limits = MediaLimits(max_bytes=1000)
    client = mock(lambda r: httpx.Response(200, content=b"x" * 5000), [])
    with pytest.raises(MediaRefused, match=r"over media\.max_bytes"):
        get("https://media.example.com/big", limits, client=client)


def test_an_undeclared_stream_over_the_cap_is_cut_off() -> None:
    limits = MediaLimits(max_bytes=1000, allow_private_hosts=True)

    async def chunks() -> Any:
        for _ in range(10):
            yield b"y" * 500

    client = mock(lambda r: httpx.Response(200, content=chunks()), [])  # chunked: no Content-Length
    with pytest.raises(MediaRefused, match=r"more than media\.max_bytes"):
        get("https://media.example.com/stream", limits, client=client)


def test_a_file_at_the_cap_is_kept_whole() -> None:
    client = mock(lambda r: httpx.Response(200, content=b"z" * 1000), [])
    assert get("https://media.example.com/ok", MediaLimits(max_bytes=1000), client=client).data == b"z" * 1000


def test_a_redirect_loop_is_refused() -> None:
    seen: list[httpx.Request] = []
    client = mock(lambda r: httpx.Response(302, headers={"Location": str(r.url)}), seen)
    with pytest.raises(MediaRefused, match="redirects"):
        get("https://media.example.com/loop", client=client)
    assert len(seen) == MAX_REDIRECTS + 1


@pytest.mark.parametrize(("status", "error"), [(500, ProviderError), (429, ProviderError), (404, ProviderRejected)])
def test_provider_answers_map_onto_the_error_tree(status: int, error: type[Exception]) -> None:
    client = mock(lambda r: httpx.Response(status), [])
    with pytest.raises(error):
        get("https://media.example.com/x", client=client)


def test_an_unreachable_host_is_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ProviderError):
        get("https://media.example.com/x", client=mock(refuse, []))


def test_media_limits_are_a_config_section_with_safe_defaults() -> None:
    from gateway.config import parse_config

    config = parse_config({"media": {"max_bytes": 5_000_000}})
    assert (config.media.max_bytes, config.media.allow_private_hosts) == (5_000_000, False)
    assert parse_config({}).media == MediaLimits()
