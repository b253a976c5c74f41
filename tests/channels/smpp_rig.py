"""The SMPP service running for a test: an in-memory ChannelContext and its own event loop in a thread.

The service's loop runs in a background thread so the test thread can drive
the fake SMSC (which blocks while it waits for answers) without stalling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from channels.base import Accepted, ChannelContext, InboxItem
from channels.gsm import gsm_encode
from channels.smpp import SmppSettings, service
from channels.smpp.client import live_link
from normalizer.errors import StoreUnavailable
from normalizer.types import Attachment
from tests.channels.smpp_smsc import WAIT_S, FakeSmsc
from tests.support.fakes import MemoryState

T = TypeVar("T")
SENDER = "6281234567890"


@dataclass
class MemoryInbox:
    """The inbox as the edge sees it: unique (channel, provider, external_id), or down."""

    items: list[InboxItem] = field(default_factory=list)
    down: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    async def accept(self, item: InboxItem) -> Accepted:
        if self.down:
            raise StoreUnavailable("inbox down")
        with self._changed:
            for number, known in enumerate(self.items, start=1):
                if (known.channel, known.provider, known.external_id) == (
                    item.channel,
                    item.provider,
                    item.external_id,
                ):
                    return Accepted(inbox_id=number, duplicate=True)
            self.items.append(item)
            self._changed.notify_all()
            return Accepted(inbox_id=len(self.items), duplicate=False)

    def wait_for(self, count: int) -> list[InboxItem]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.items) >= count, timeout=WAIT_S):
                raise AssertionError(f"inbox: {len(self.items)} items, waited for {count}")
            return list(self.items)


@contextlib.asynccontextmanager
async def _no_lock(name: str) -> AsyncIterator[None]:
    yield


def _no_attachments(data: bytes, filename: str | None, content_type: str | None) -> Attachment:
    raise AssertionError("SMPP keeps no attachments")


def memory_context(inbox: MemoryInbox, state: MemoryState, data_dir: Path) -> ChannelContext:
    """A ChannelContext of the phase-1 tests: in-memory inbox and state, no lock to take."""
    return ChannelContext(
        accept=inbox.accept,
        public_url="http://127.0.0.1:8080",
        data_dir=data_dir,
        state=state,
        save_attachment=_no_attachments,
        exclusive=_no_lock,
        http=httpx.AsyncClient(),
    )


class ServiceRunner:
    """Runs ``service(settings, ctx)`` on an event loop in a background thread."""

    def __init__(self, settings: SmppSettings, inbox: MemoryInbox, state: MemoryState, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="smpp-test-loop", daemon=True)
        self._thread.start()
        self.settings = settings
        self.ctx = memory_context(inbox, state, data_dir)
        self._task = self.call(self._start(settings))

    async def _start(self, settings: SmppSettings) -> asyncio.Task[None]:
        return asyncio.create_task(service(settings, self.ctx))

    def wait_link_up(self) -> None:
        """Until the service itself has seen its bind_resp (the SMSC knows a moment earlier)."""

        async def bound() -> None:
            while live_link(self.settings.system_id) is None:
                await asyncio.sleep(0.01)

        self.call(bound())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the service's loop and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT_S)

    def stop(self) -> None:
        async def cancel() -> None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self.ctx.http.aclose()

        self.call(cancel())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT_S)
        self.loop.close()


@dataclass
class Rig:
    smsc: FakeSmsc
    inbox: MemoryInbox
    state: MemoryState
    runner: ServiceRunner
    settings: SmppSettings


def smpp_block(smsc: FakeSmsc, **overrides: Any) -> dict[str, Any]:
    """The ``channels.smpp`` config block that binds to ``smsc``."""
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": smsc.system_id,
        "password": smsc.password,
        "short_code": "1708",
    }
    values.update(overrides)
    return values


def settings_for(smsc: FakeSmsc, **overrides: Any) -> SmppSettings:
    return SmppSettings.model_validate(smpp_block(smsc, **overrides))


def mo(text: str | None = None, **fields: Any) -> dict[str, Any]:
    """deliver_sm fields of a citizen's message to 1708 (``text`` GSM-encoded as its short_message)."""
    base: dict[str, Any] = {
        "source_addr_ton": 1,
        "source_addr_npi": 1,
        "source_addr": SENDER,
        "destination_addr": "1708",
        "data_coding": 0,
    }
    if text is not None:
        base["short_message"] = gsm_encode(text)
    base.update(fields)
    return base


@contextlib.contextmanager
def running_service(tmp_path: Path, wait_bound: bool = True, **overrides: Any) -> Iterator[Rig]:
    """A fake SMSC and the SMPP service bound to it, stopped (with unbind) at the end."""
    with FakeSmsc() as smsc:
        settings = settings_for(smsc, **overrides)
        inbox, state = MemoryInbox(), MemoryState()
        runner = ServiceRunner(settings, inbox, state, tmp_path)
        try:
            if wait_bound:
                smsc.wait_bound()
                runner.wait_link_up()
            yield Rig(smsc, inbox, state, runner, settings)
        finally:
            runner.stop()
