"""In-memory stand-ins for the parts of a ``ChannelContext`` every channel's unit tests share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from normalizer.errors import StoreUnavailable
from normalizer.types import Attachment


class MemoryState:
    """The ``StateStore`` contract in a dict, as the ``channel_state`` table keeps it: values through JSON,
    ``items`` in key order; ``down`` makes every call fail like an unreachable database."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("state store down")

    def get(self, key: str) -> Any | None:
        self._check()
        return self.values.get(key)

    def put(self, key: str, value: Any) -> None:
        self._check()
        self.values[key] = json.loads(json.dumps(value))  # what a JSON column would give back

    def delete(self, key: str) -> None:
        self._check()
        self.values.pop(key, None)

    def items(self, prefix: str) -> list[tuple[str, Any]]:
        self._check()
        return sorted((key, value) for key, value in self.values.items() if key.startswith(prefix))


@dataclass
class SavedFiles:
    """``ctx.save_attachment`` keeping the bytes in memory, by sha256 like the real one."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def __call__(self, data: bytes, filename: str | None, content_type: str | None) -> Attachment:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return Attachment(filename=filename, content_type=content_type, size=len(data), sha256=digest)


@dataclass
class Locks:
    """``ctx.exclusive`` for one process: records which names were held."""

    held: list[str] = field(default_factory=list)

    @asynccontextmanager
    async def __call__(self, name: str) -> AsyncIterator[None]:
        self.held.append(name)
        yield
