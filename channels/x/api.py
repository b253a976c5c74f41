"""Calls to the X API: replies as direct messages (API v2, OAuth 2.0 user-context token)."""

from __future__ import annotations

import httpx

from channels.base import Reply, Sent
from channels.x.settings import XSettings
from normalizer.errors import ProviderError, raise_for_provider_status


def dm_path(participant_id: str) -> str:
    return f"/2/dm_conversations/with/{participant_id}/messages"


async def send(reply: Reply, settings: XSettings, client: httpx.AsyncClient) -> Sent:
    """A DM to the citizen (to a mention's author too: the answer carries a tracking id, not for the timeline)."""
    url = settings.api_url(dm_path(reply.to))
    headers = {"Authorization": f"Bearer {settings.access_token.get_secret_value()}"}
    try:
        response = await client.post(url, json={"text": reply.text}, headers=headers)
    except httpx.TransportError as exc:
        raise ProviderError(f"x: POST {dm_path(reply.to)} failed: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise_for_provider_status(response.status_code, f"x: POST {dm_path(reply.to)}", _error(response))
    try:
        return Sent(provider_message_id=str(response.json()["data"]["dm_event_id"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError("x: DM answered without data.dm_event_id") from exc


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("title") or body)[:200]
    except (ValueError, AttributeError):
        return response.text[:200]
