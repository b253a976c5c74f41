"""A forwarder that accepts the connection and never answers — silently, or one byte at a time, which per-read
timeouts never catch: each send ends at ``worker.send_timeout_s``, complaints keep being made, the other
forwarder keeps getting every record, and the hung peer never holds more connections than one batch."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.config import Config
from sinks.store.db import Store
from sinks.store.models import OutboxMessage
from tests.conftest import bearer
from tests.support.e2e import eventually
from tests.support.provider_api import Canned, ProviderApi


class HangingPeer:
    """Accepts every connection and keeps it; ``trickle``: sends a status line then a byte every 0.2 s, forever."""

    def __init__(self, trickle: bool) -> None:
        self.trickle = trickle
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/complaints"
        self.open_now = 0
        self.most_open = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        threading.Thread(target=self._accept, name="hanging-peer", daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open_now += 1
                self.most_open = max(self.most_open, self.open_now)
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        try:
            if self.trickle:
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self._closing.wait(0.2):
                if self.trickle:
                    connection.sendall(b"a")
                elif connection.recv(65536) == b"":
                    break
        except OSError:
            pass  # the gateway gave up on us and closed: that is the point
        finally:
            connection.close()
            with self._lock:
                self.open_now -= 1

    def close(self) -> None:
        self._closing.set()
        self.listener.close()


@contextmanager
def peers() -> Iterator[tuple[HangingPeer, HangingPeer, ProviderApi]]:
    silent, trickling = HangingPeer(trickle=False), HangingPeer(trickle=True)
    try:
        with ProviderApi(default=Canned.json({"ok": True})) as good:
            yield silent, trickling, good
    finally:
        silent.close()
        trickling.close()


def test_hanging_forwarders_time_out_and_neither_complaints_nor_the_other_forwarder_wait_for_them(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient], store: Store, agent_token: str
) -> None:
    entries = 12
    with peers() as (silent, trickling, good):
        config = make_config(
            sinks=[
                {"name": "silent", "url": silent.url, "timeout_s": 1.0},
                {"name": "trickling", "url": trickling.url, "timeout_s": 1.0},
                {"name": "good", "url": f"{good.url}/complaints"},
            ],
            worker={"send_timeout_s": 3.0, "batch_size": 4, "max_attempts": 100},
        )
        with running_client(config) as client:
            answers = [
                client.post(
                    "/api/v1/complaints",
                    json={"body": f"Jembatan retak, laporan {n}", "source": "phone"},
                    headers={**bearer(agent_token), "Idempotency-Key": f"hang-{n}"},
                )
                for n in range(entries)
            ]
            eventually(lambda: len(good.seen("POST", "/complaints")) >= entries, "every record at the good sink", 120)

            def hung_rows_retried() -> list[OutboxMessage] | None:
                with store.read() as session:
                    every = session.execute(select(OutboxMessage)).scalars()
                    rows = [row for row in every if row.target in ("silent", "trickling")]
                retried = [row for row in rows if row.attempts >= 1]
                return retried if {row.target for row in retried} == {"silent", "trickling"} else None

            retried = eventually(hung_rows_retried, "the hung sends to end and be retried", 120)

    assert [answer.status_code for answer in answers] == [201] * entries  # the inbox never waited on them
    trickled = [row for row in retried if row.target == "trickling"]
    assert all("no answer within 3 s" in (row.last_error or "") for row in trickled)
    assert all(row.status in ("pending", "processing") for row in retried)  # retried, not dead-lettered
    # Never more sends in flight than one batch, however long the peers hang.
    assert silent.most_open <= 4 and trickling.most_open <= 4


@pytest.mark.parametrize("send_timeout_s", [60.0, 90.0])
def test_send_timeout_must_end_before_the_lease(make_config: Callable[..., Config], send_timeout_s: float) -> None:
    with pytest.raises(Exception, match="send_timeout_s must be below lease_s"):
        make_config(worker={"send_timeout_s": send_timeout_s, "lease_s": 60.0})
