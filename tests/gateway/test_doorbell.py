"""SQLite's same-host doorbell (gateway/notify.py): commits heard by other processes without a poll.

Real processes and real SQLite files throughout. A datagram on a Unix socket is queued before ``sendto``
returns, so "was it rung?" is asked with ``wait(0)``: no sleeps, no timing thresholds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col
from structlog.testing import capture_logs

from channels.base import InboxItem
from gateway import logs
from gateway.app import Gateway
from gateway.inbox import insert_inbox_rows
from gateway.notify import DONE_CHANNEL, INBOX_CHANNEL, Doorbell, doorbell_directory, notifier_for
from gateway.worker import Completion
from sinks.store.db import Store, open_store, upgrade
from sinks.store.models import DONE, InboxMessage, utcnow
from tests.conftest import build_config
from tests.support.e2e import eventually
from tests.support.server import Served, cli, free_port, serve, write_config

ENTRY = b'{"body": "Jembatan retak di Desa Sukamaju", "source": "radio"}'


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path}/lapor.db")
    upgrade(store)
    yield store
    store.dispose()


def _doorbell(store: Store) -> Doorbell:
    notifier = notifier_for(store)
    assert isinstance(notifier, Doorbell)
    return notifier


def _insert_row(session: Session, external_id: str) -> None:
    insert_inbox_rows(session, [(InboxItem("manual", "callcenter", external_id, raw=ENTRY), utcnow())])


def _rows(store: Store) -> int:
    with store.read() as session:
        return int(session.execute(select(func.count()).select_from(InboxMessage)).scalar_one())


# ---- the doorbell itself ------------------------------------------------------------------


def test_a_commit_in_another_process_wakes_a_listener_after_its_rows_are_there(
    sqlite_store: Store, tmp_path: Path
) -> None:
    heard: list[int] = []  # rows visible to us each time we were woken
    woken = threading.Event()
    stop = threading.Event()

    def on_notify() -> None:
        heard.append(_rows(sqlite_store))
        woken.set()

    listening = threading.Thread(target=_doorbell(sqlite_store).listen, args=(INBOX_CHANNEL, on_notify, stop, 1.0))
    listening.start()
    try:
        eventually(lambda: _doorbell(sqlite_store).listeners(INBOX_CHANNEL), "the listener's socket")
        eventually(woken.is_set, "the look on listening")
        woken.clear()
        committer = textwrap.dedent(
            f"""
            from channels.base import InboxItem
            from gateway.inbox import insert_inbox_rows
            from gateway.notify import INBOX_CHANNEL, notifier_for
            from sinks.store.db import open_store
            from sinks.store.models import utcnow

            store = open_store({sqlite_store.url!r})
            with store.write() as session:
                item = InboxItem("manual", "callcenter", "from-another-process", raw=b"{{}}")
                insert_inbox_rows(session, [(item, utcnow())])
                notifier_for(store).announce_in(session, INBOX_CHANNEL)
            store.dispose()
            """
        )
        subprocess.run([sys.executable, "-c", committer], check=True, timeout=120, cwd=Path.cwd())
        assert woken.wait(timeout=60), "the other process's commit rang no bell"
    finally:
        stop.set()
        listening.join(timeout=30)
    assert heard[0] == 0 and heard[-1] == 1  # rung after the commit: the row was there to read


def test_an_announcement_rings_at_the_outermost_commit_and_never_on_rollback(sqlite_store: Store) -> None:
    doorbell = _doorbell(sqlite_store)
    with doorbell.subscribe(DONE_CHANNEL) as bell:
        with sqlite_store.write() as session:
            doorbell.announce_in(session, DONE_CHANNEL)
            with session.begin_nested():  # a released savepoint is not the commit
                _insert_row(session, "in-a-savepoint")
            assert not bell.wait(0)
        assert bell.wait(0)

        with pytest.raises(RuntimeError), sqlite_store.write() as session:
            _insert_row(session, "rolled-back")
            doorbell.announce_in(session, DONE_CHANNEL)
            raise RuntimeError("the transaction fails")
        assert not bell.wait(0)
    assert _rows(sqlite_store) == 1


def test_rings_on_one_channel_do_not_wake_the_other(sqlite_store: Store) -> None:
    doorbell = _doorbell(sqlite_store)
    with doorbell.subscribe(INBOX_CHANNEL) as inbox, doorbell.subscribe(DONE_CHANNEL) as done:
        doorbell.ring(DONE_CHANNEL)
        assert done.wait(0)
        assert not inbox.wait(0)


def test_many_rings_before_a_look_wake_once_and_never_block_the_ringer(sqlite_store: Store) -> None:
    doorbell = _doorbell(sqlite_store)
    with doorbell.subscribe(INBOX_CHANNEL) as bell:
        for _ in range(10_000):  # far past a socket buffer: the ringer goes on (EAGAIN means "awake already")
            doorbell.ring(INBOX_CHANNEL)
        assert bell.wait(0)
        assert not bell.wait(0)  # all of them counted as one


def test_a_dead_listeners_socket_is_removed_by_the_next_ring(sqlite_store: Store) -> None:
    listener = textwrap.dedent(
        f"""
        import time
        from gateway.notify import INBOX_CHANNEL, notifier_for
        from sinks.store.db import open_store

        with notifier_for(open_store({sqlite_store.url!r})).subscribe(INBOX_CHANNEL) as bell:
            print(bell.path, flush=True)
            time.sleep(3600)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", listener], stdout=subprocess.PIPE, text=True, cwd=Path.cwd())
    try:
        assert process.stdout is not None
        path = Path(process.stdout.readline().strip())
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert path.exists()  # SIGKILL: nobody cleaned up
    doorbell = _doorbell(sqlite_store)
    assert doorbell.listeners(INBOX_CHANNEL) == [str(path)]

    doorbell.ring(INBOX_CHANNEL)

    assert not path.exists()
    assert doorbell.listeners(INBOX_CHANNEL) == []


def test_ringing_with_nobody_listening_is_harmless(sqlite_store: Store) -> None:
    doorbell = _doorbell(sqlite_store)
    assert not doorbell.directory.exists()  # nobody has ever listened on this database
    doorbell.ring(INBOX_CHANNEL)
    with doorbell.subscribe(DONE_CHANNEL):
        doorbell.ring(INBOX_CHANNEL)  # the directory is there, nobody on this channel
    with sqlite_store.write() as session:
        _insert_row(session, "nobody-listens")
        doorbell.announce_in(session, INBOX_CHANNEL)
    assert _rows(sqlite_store) == 1
    assert not doorbell.directory.exists()  # the last listener to leave took it away


def test_a_doorbell_that_cannot_ring_does_not_fail_the_commit(sqlite_store: Store) -> None:
    doorbell = _doorbell(sqlite_store)
    doorbell.directory.parent.mkdir(mode=0o700, exist_ok=True)
    doorbell.directory.write_text("not a directory")  # listing it fails
    try:
        with capture_logs() as captured, sqlite_store.write() as session:
            _insert_row(session, "rung-in-vain")
            doorbell.announce_in(session, INBOX_CHANNEL)
    finally:
        doorbell.directory.unlink()
    assert _rows(sqlite_store) == 1
    assert [entry["event"] for entry in captured] == [logs.NOTIFY_RING_FAILED]


def test_a_database_under_a_long_path_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 6))
    store = open_store(f"sqlite:///{deep}/lapor.db")
    try:
        assert len(str(deep)) > 108  # where AF_UNIX could not bind
        doorbell = _doorbell(store)
        with doorbell.subscribe(INBOX_CHANNEL) as bell:
            assert len(str(bell.path)) < 108
            doorbell.ring(INBOX_CHANNEL)
            assert bell.wait(0)
    finally:
        store.dispose()


def test_two_spellings_of_one_database_share_a_doorbell_and_two_databases_do_not(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "one")
    same = doorbell_directory(str(tmp_path / "one" / "lapor.db"))
    assert doorbell_directory(str(tmp_path / "link" / ".." / "one" / "lapor.db")) == same
    assert doorbell_directory(str(tmp_path / "link" / "lapor.db")) == same
    assert doorbell_directory(str(tmp_path / "two" / "lapor.db")) != same


def test_a_listener_whose_socket_file_was_removed_binds_again(sqlite_store: Store) -> None:
    doorbell = _doorbell(sqlite_store)
    woken = threading.Event()
    stop = threading.Event()
    listening = threading.Thread(target=doorbell.listen, args=(INBOX_CHANNEL, woken.set, stop, 1.0))
    listening.start()
    try:
        (first,) = eventually(lambda: doorbell.listeners(INBOX_CHANNEL), "the listener's socket")
        os.unlink(first)  # a /tmp cleaner
        (second,) = eventually(lambda: doorbell.listeners(INBOX_CHANNEL), "the socket bound again")
        assert second != first
        eventually(woken.is_set, "the look on listening")
        woken.clear()
        doorbell.ring(INBOX_CHANNEL)
        assert woken.wait(timeout=60)
    finally:
        stop.set()
        listening.join(timeout=30)
    assert not listening.is_alive()
    assert doorbell.listeners(INBOX_CHANNEL) == []  # it cleaned up on stop


# ---- wired: a worker in another process, on SQLite --------------------------------------------


def _worker_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "worker"], stdout=sink, stderr=subprocess.STDOUT
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def test_a_waiting_request_hears_a_worker_in_another_process_finish_its_row(tmp_path: Path) -> None:
    """Both polls an hour away: only the doorbell (inbox -> worker, worker -> request) can answer."""
    url = f"sqlite:///{tmp_path}/lapor.db"
    config = build_config(url, tmp_path / "data", worker={"in_process": False, "poll_interval_s": 3600})
    edge = Gateway(config, open_store(url))
    upgrade(edge.store)
    edge.inbox.start()
    doorbell = _doorbell(edge.store)
    config_file = write_config(tmp_path, url, free_port(), "worker:\n  in_process: false\n  poll_interval_s: 3600\n")
    worker = _worker_process(config_file, tmp_path / "worker.log")

    async def entry(number: int) -> Completion:
        key = ("manual", "callcenter", f"doorbell-{number}")
        with edge.waiters.waiting(key) as completed:
            await edge.inbox.accept(InboxItem(*key, raw=ENTRY))
            return await asyncio.wait_for(completed, timeout=60)

    async def two_entries() -> list[Completion]:
        edge.waiters.bind(asyncio.get_running_loop())
        following = asyncio.create_task(edge.follow_completions(fallback_s=3600))
        try:
            # The worker listens (its models loaded) and looked once on starting; our look on listening is
            # spent on the first entry too: the second can only be answered by the two bells.
            await asyncio.to_thread(eventually, lambda: doorbell.listeners(INBOX_CHANNEL), "the worker", 120)
            return [await entry(1), await entry(2)]
        finally:
            following.cancel()

    try:
        first, second = asyncio.run(two_entries())
    finally:
        _stop(worker)
        edge.inbox.stop()
        edge.store.dispose()
    assert [first.status, second.status] == [DONE, DONE]
    assert second.records[0]["body"] == "Jembatan retak di Desa Sukamaju"
    assert doorbell.listeners(INBOX_CHANNEL) == []  # the worker took its socket away on SIGTERM


def test_manual_entry_gets_its_record_from_a_separate_worker_process_on_sqlite(tmp_path: Path) -> None:
    """``serve`` with ``worker.in_process: false`` and one ``lapor-gateway worker`` whose poll is an hour:
    without the doorbell the entry would wait out ENTRY_WAIT_S and answer 202."""
    url = f"sqlite:///{tmp_path}/lapor.db"
    port = free_port()
    config = write_config(tmp_path, url, port, "worker:\n  in_process: false\n  poll_interval_s: 3600\n")
    cli(config, "db", "upgrade")
    token = cli(config, "tokens", "create", "--name", "siti", "--role", "agent").strip()
    served: Served = serve(config, port, tmp_path / "serve.log")
    worker = _worker_process(config, tmp_path / "worker.log")
    store = open_store(url)
    doorbell = _doorbell(store)
    try:
        # The worker's own look on starting is done (or about to be) before the first entry arrives.
        eventually(lambda: doorbell.listeners(INBOX_CHANNEL), "the worker listening", 120)
        answers = [
            httpx.post(
                f"{served.url}/api/v1/complaints",
                content=f'{{"body": "Lampu jalan mati di gang {number}", "source": "phone"}}'.encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=60,
            )
            for number in range(3)
        ]
    finally:
        served.stop()
        _stop(worker)
    try:
        with store.read() as session:
            done = session.execute(select(func.count()).where(col(InboxMessage.status) == DONE)).scalar_one()
    finally:
        store.dispose()
    assert [answer.status_code for answer in answers] == [201, 201, 201], [answer.text for answer in answers]
    assert [answer.json()["body"] for answer in answers] == [f"Lampu jalan mati di gang {n}" for n in range(3)]
    assert done == 3
    assert not doorbell.directory.exists()  # both stopped on SIGTERM and took their sockets away
