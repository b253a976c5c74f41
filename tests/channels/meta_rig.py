"""Test rig for the chat channels (WhatsApp and Telegram tests both use it).

- ``fake_provider_api``: tests/support's ``ProviderApi`` standing in for Meta's Graph API
  or Telegram's Bot API.
- ``MemoryInbox``: an ``Accept`` that dedups on (channel, provider,
  external_id) the way the real inbox's unique constraint does.
- ``make_context``: a ``ChannelContext`` built from those pieces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from channels.base import Accepted, ChannelContext, InboxItem
from channels.media import MediaLimits
from tests.support.fakes import Locks, MemoryState, SavedFiles
from tests.support.provider_api import Canned, ProviderApi
from tests.support.server import free_port


def unreachable_url() -> str:
    """A loopback URL nothing listens on: a port bound, then released."""
    return f"http://127.0.0.1:{free_port()}"


@contextmanager
def fake_provider_api() -> Iterator[ProviderApi]:
    """Graph or Bot API: a call to a path no test routed gets a 404."""
    with ProviderApi(default=Canned.json({"error": "no route"}, status=404)) as api:
        yield api


@dataclass
class MemoryInbox:
    """The inbox's dedup contract without a database; ``fail`` makes every accept raise."""

    items: dict[tuple[str, str, str], InboxItem] = field(default_factory=dict)
    fail: bool = False

    async def __call__(self, item: InboxItem) -> Accepted:
        if self.fail:
            raise RuntimeError("database unavailable")
        key = (item.channel, item.provider, item.external_id)
        duplicate = key in self.items
        self.items.setdefault(key, item)
        return Accepted(inbox_id=list(self.items).index(key) + 1, duplicate=duplicate)

    @property
    def keys(self) -> list[str]:
        return [external_id for _, _, external_id in self.items]


def make_context(
    http: httpx.AsyncClient,
    inbox: MemoryInbox | None = None,
    files: SavedFiles | None = None,
    state: MemoryState | None = None,
    locks: Locks | None = None,
    media: MediaLimits | None = None,
) -> ChannelContext:
    return ChannelContext(
        accept=inbox if inbox is not None else MemoryInbox(),
        public_url="https://lapor.example.go.id",
        data_dir=Path("/nonexistent"),
        state=state if state is not None else MemoryState(),
        save_attachment=files if files is not None else SavedFiles(),
        exclusive=locks if locks is not None else Locks(),
        http=http,
        # The provider stand-ins listen on loopback, which production refuses.
        media=media if media is not None else MediaLimits(allow_private_hosts=True),
    )


async def wait_until(condition: Any, attempts: int = 500) -> None:
    """Yield to the loop until ``condition()`` holds (a bounded wait, not a timing assertion)."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")
