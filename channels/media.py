"""Downloading a provider's media: the one place the gateway fetches a URL someone else handed it.

Every channel that downloads media (Twilio ``MediaUrl``, WhatsApp and the other
Meta products, Line's content API, X…) calls ``fetch_media``, because a media
URL arrives inside a payload and is only as trustworthy as the payload:

    fetched = await fetch_media(
        ctx.http,                      # the worker's client (tests plug in a transport)
        url,                           # absolute, or relative to ``base_url``
        ctx.media,                     # MediaLimits: the operator's ``media:`` section
        credential_hosts=("api.twilio.com",),
        auth=httpx.BasicAuth(sid, token),          # and/or headers={"Authorization": ...}
        base_url="https://api.twilio.com",
    )
    ctx.save_attachment(fetched.data, filename, fetched.content_type)

What it guarantees:

- **Credentials only to the provider.** ``auth`` and ``headers`` go only to a
  host named in ``credential_hosts`` (``"example.com"`` exactly, or
  ``".example.com"`` for its subdomains). A URL elsewhere is fetched without
  them; a redirect to another host drops them (Twilio redirects its media to
  a CDN that wants none).
- **No private targets.** A URL (or a redirect) whose host is, or resolves to,
  a loopback, private, link-local, reserved or multicast address is refused,
  unless ``media.allow_private_hosts`` is set (tests; an on-premises provider).
- **Bounded size and time.** More than ``media.max_bytes`` (by
  ``Content-Length`` or as the bytes arrive) is refused; the read is streamed,
  never held beyond the cap; at most ``MAX_REDIRECTS`` hops.

Errors follow the tree: a refused target, an oversized file or a 4xx is
``ProviderRejected`` (retrying will not help); network trouble, 5xx and 429
are ``ProviderError`` (the media job tries again later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field

from normalizer.errors import ProviderError, ProviderRejected, raise_for_provider_status

MAX_REDIRECTS = 5
# A host that does not resolve in time is left to the real connection, which fails the same way.
RESOLVE_TIMEOUT_S = 5.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class MediaLimits(BaseModel):
    """``media:`` in config.yaml, for every channel's downloads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # WhatsApp allows 100 MB documents, Telegram's Bot API serves 20 MB: 25 MiB keeps photos and PDFs.
    max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # Loopback and private networks (tests, a provider stand-in on the LAN): off by default.
    allow_private_hosts: bool = False
    timeout_s: float = Field(default=30.0, gt=0)


class MediaRefused(ProviderRejected):
    """A media URL the gateway will not fetch (private target, too large, not http)."""


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None
    url: str  # where the bytes finally came from, after redirects


def _may_get_credentials(host: str, credential_hosts: Collection[str]) -> bool:
    host = host.lower().rstrip(".")
    for allowed in credential_hosts:
        allowed = allowed.lower().rstrip(".")
        if allowed.startswith(".") and host.endswith(allowed):
            return True
        if host == allowed:
            return True
    return False


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified
    )


async def _addresses(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return []
    return [str(info[4][0]) for info in infos]


async def _check_target(url: httpx.URL, limits: MediaLimits) -> None:
    if url.scheme not in ("http", "https") or not url.host:
        raise MediaRefused(f"media: refusing {url.scheme or 'relative'} URL (only http and https are fetched)")
    if limits.allow_private_hosts:
        return
    if url.host.lower().rstrip(".") == "localhost":
        raise MediaRefused("media: refusing a loopback target (set media.allow_private_hosts to allow)")
    port = url.port or (443 if url.scheme == "https" else 80)
    for address in await _addresses(url.host, port):
        if _is_private(address):
            raise MediaRefused(
                f"media: refusing {url.host}, a private or loopback address (set media.allow_private_hosts to allow)"
            )


async def fetch_media(
    client: httpx.AsyncClient,
    url: str,
    limits: MediaLimits,
    *,
    credential_hosts: Collection[str] = (),
    auth: httpx.BasicAuth | None = None,
    headers: Mapping[str, str] | None = None,
    base_url: str | None = None,
) -> Fetched:
    """The bytes at ``url``, under the rules in the module docstring."""
    try:
        target = httpx.URL(base_url).join(url) if base_url else httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise MediaRefused(f"media: not a URL ({exc})") from exc
    for _ in range(MAX_REDIRECTS + 1):
        await _check_target(target, limits)
        trusted = _may_get_credentials(target.host, credential_hosts)
        request = client.build_request(
            "GET", target, headers=dict(headers or {}) if trusted else None, timeout=limits.timeout_s
        )
        if trusted and auth is not None:
            request = _authorised(request, auth)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ProviderError(f"media: {type(exc).__name__} fetching {target.host}") from exc
        try:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                target = target.join(response.headers["location"])
                continue
            raise_for_provider_status(response.status_code, f"media host {target.host}")
            data = await _read_capped(response, limits.max_bytes, target.host)
            return Fetched(data=data, content_type=response.headers.get("content-type"), url=str(target))
        finally:
            await response.aclose()
    raise MediaRefused(f"media: more than {MAX_REDIRECTS} redirects")


def _authorised(request: httpx.Request, auth: httpx.BasicAuth) -> httpx.Request:
    """The request with Basic ``auth`` applied (it needs no round trip, unlike Digest)."""
    flow = auth.sync_auth_flow(request)
    return next(flow)


async def _read_capped(response: httpx.Response, max_bytes: int, host: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise MediaRefused(f"media: {host} offers {int(declared)} bytes, over media.max_bytes ({max_bytes})")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise MediaRefused(f"media: {host} sent more than media.max_bytes ({max_bytes})")
            chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ProviderError(f"media: {type(exc).__name__} reading from {host}") from exc
    return b"".join(chunks)
