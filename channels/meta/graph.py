"""Graph API calls (bearer token, errors onto the tree) and media downloads through ``channels.media``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

from channels.base import ChannelContext
from channels.media import Fetched, fetch_media
from channels.meta.settings import MetaAppSettings
from normalizer.errors import ProviderError, raise_for_provider_status


async def graph_call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    token: str,
    product: str,
    json: dict[str, Any] | None = None,
) -> httpx.Response:
    """One authorised call; 5xx, 429 and network trouble are retryable, other 4xx are not."""
    try:
        response = await client.request(method, url, json=json, headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError as exc:
        raise ProviderError(f"{product}: {method} {_path(url)} failed: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise_for_provider_status(response.status_code, f"{product}: {method} {_path(url)}", graph_error(response))
    return response


def _path(url: str) -> str:
    """The URL without host or query (media URLs carry signed query strings)."""
    return httpx.URL(url).path


def graph_error(response: httpx.Response) -> str:
    """Meta's ``{"error": {"message", "code", "error_subcode"}}`` as one line."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return response.text[:200]
    if not isinstance(error, dict):
        return str(error)[:200]
    codes = "/".join(str(error[key]) for key in ("code", "error_subcode") if error.get(key) is not None)
    return f"{error.get('message') or error}" + (f" (code {codes})" if codes else "")


async def download(
    ctx: ChannelContext,
    url: str,
    settings: MetaAppSettings,
    credential_hosts: Collection[str],
) -> Fetched:
    """A media URL through ``channels.media``: the access token only on ``credential_hosts``."""
    return await fetch_media(
        ctx.http,
        url,
        ctx.media,
        credential_hosts=credential_hosts,
        headers={"Authorization": f"Bearer {settings.access_token.get_secret_value()}"},
    )
