"""The IMAP poller against a real Dovecot (Debian's dovecot-imapd) on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from channels.base import ChannelContext
from channels.email.imap import ImapSettings, poll_once, serve
from tests.channels.dovecot_rig import BARE_CAPABILITIES, Dovecot, running_dovecot
from tests.channels.email_rig import JsonState, MemoryInbox, SqliteInbox, make_context
from tests.support.fakes import Locks, MemoryState

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def mail(number: int) -> bytes:
    return (
        f"From: Warga {number} <warga{number}@contoh.id>\r\n"
        "To: lapor@kota.go.id\r\n"
        f"Subject: Laporan nomor {number}\r\n"
        f"Message-ID: <mail-{number}@contoh.id>\r\n"
        "\r\n"
        f"Jalan rusak di RT {number}.\r\n"
    ).encode()


def mail_id(number: int) -> str:
    return f"<mail-{number}@contoh.id>"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def bare_dovecot() -> Iterator[Dovecot]:
    """A Dovecot that advertises neither IDLE nor MOVE."""
    with running_dovecot(BARE_CAPABILITIES) as server:
        yield server


def settings_for(server: Dovecot, **overrides: Any) -> ImapSettings:
    block: dict[str, Any] = {
        "enabled": True,
        "host": server.host,
        "port": server.port,
        "ssl": False,
        "username": server.username,
        "password": server.password,
        "poll_seconds": 120,
        **overrides,
    }
    return ImapSettings.model_validate(block)


def run_service_until(settings: ImapSettings, ctx: ChannelContext, done: Callable[[], bool]) -> None:
    """Run the poller service until ``done()`` holds (30 s at most), then cancel it."""

    async def main() -> None:
        task = asyncio.create_task(serve(settings, ctx))
        try:
            deadline = time.monotonic() + 30
            while not done():
                if task.done():
                    task.result()
                assert time.monotonic() < deadline, "the poller did not get there within 30 s"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())


def test_new_mail_is_accepted_then_moved_to_a_created_processed_folder(dovecot: Dovecot, tmp_path: Path) -> None:
    dovecot.append(mail(1), mail(2))
    inbox = MemoryInbox()

    taken = asyncio.run(poll_once(settings_for(dovecot), make_context(inbox.accept, tmp_path)))

    assert taken == 2
    assert [(item.provider, item.external_id) for item in inbox.items()] == [
        ("imap", mail_id(1)),
        ("imap", mail_id(2)),
    ]
    assert inbox.items()[0].raw == mail(1)
    assert inbox.items()[0].meta["folder"] == "INBOX"
    assert dovecot.message_ids("INBOX") == []
    assert dovecot.message_ids("Processed") == [mail_id(1), mail_id(2)]


def test_without_move_the_mail_is_copied_and_expunged(bare_dovecot: Dovecot, tmp_path: Path) -> None:
    bare_dovecot.append(mail(1), mail(2))
    inbox = MemoryInbox()

    asyncio.run(
        poll_once(settings_for(bare_dovecot, processed_folder="Arsip/Lapor"), make_context(inbox.accept, tmp_path))
    )

    assert len(inbox.rows) == 2
    assert bare_dovecot.message_ids("INBOX") == []
    assert bare_dovecot.message_ids("Arsip/Lapor") == [mail_id(1), mail_id(2)]


def test_without_processed_folder_mail_is_flagged_seen_and_taken_once(dovecot: Dovecot, tmp_path: Path) -> None:
    dovecot.append(mail(1), mail(2))
    inbox, state = MemoryInbox(), MemoryState()
    settings = settings_for(dovecot, processed_folder=None)

    first = asyncio.run(poll_once(settings, make_context(inbox.accept, tmp_path, state)))
    dovecot.append(mail(3))
    second = asyncio.run(poll_once(settings, make_context(inbox.accept, tmp_path, state)))

    assert (first, second, inbox.calls) == (2, 1, 3)
    assert dovecot.message_ids("INBOX") == [mail_id(1), mail_id(2), mail_id(3)]
    with dovecot.client() as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    assert [b"\\Seen" in each for each in flags.values()] == [True, True, True]


def test_implicit_tls_with_the_configured_ca_is_verified_and_read(tmp_path: Path) -> None:
    with running_dovecot(tls=True) as server:
        server.append(mail(1))
        inbox = MemoryInbox()
        settings = settings_for(server, ssl=True, ca_file=server.ca_file)

        asyncio.run(poll_once(settings, make_context(inbox.accept, tmp_path)))

        assert list(inbox.rows) == [("email", "imap", mail_id(1))]
        assert server.message_ids("Processed") == [mail_id(1)]
        # Without the CA the self-signed server is not trusted, and nothing is read.
        server.append(mail(2))
        with pytest.raises(ssl.SSLCertVerificationError):
            asyncio.run(poll_once(settings_for(server, ssl=True), make_context(inbox.accept, tmp_path)))
        assert len(inbox.rows) == 1


def test_uidvalidity_change_takes_the_folder_again(dovecot: Dovecot, tmp_path: Path) -> None:
    dovecot.append(mail(1))
    state = MemoryState()
    key = f"imap:{dovecot.username}@{dovecot.host}/INBOX"
    state.put(key, {"uidvalidity": 1, "last_uid": 999})  # from a folder the server has since renumbered
    inbox = MemoryInbox()

    asyncio.run(poll_once(settings_for(dovecot), make_context(inbox.accept, tmp_path, state)))

    assert list(inbox.rows) == [("email", "imap", mail_id(1))]
    assert state.values[key]["uidvalidity"] != 1
    assert state.values[key]["last_uid"] == 1


def test_kill_9_between_commit_and_move_makes_no_duplicate_and_misses_nothing(dovecot: Dovecot, tmp_path: Path) -> None:
    dovecot.append(mail(1), mail(2), mail(3))
    block = {"enabled": True, "host": dovecot.host, "port": dovecot.port, "ssl": False}
    block |= {"username": dovecot.username, "password": dovecot.password, "poll_seconds": 120}
    paths = {name: tmp_path / name for name in ("inbox.db", "state.json", "marker")}
    command = [sys.executable, "-m", "tests.channels.email_rig", "poll", "--settings", json.dumps(block)]
    command += ["--inbox", str(paths["inbox.db"]), "--state", str(paths["state.json"]), "--data", str(tmp_path)]
    command += ["--marker", str(paths["marker"]), "--hang-after", "2"]
    poller = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not paths["marker"].exists():
            assert poller.poll() is None, poller.stderr.read().decode() if poller.stderr else "poller exited"
            assert time.monotonic() < deadline, "the poller never reached the second mail"
            time.sleep(0.05)
    finally:
        os.kill(poller.pid, signal.SIGKILL)
        poller.wait()
        if poller.stderr:
            poller.stderr.close()

    # Killed with mail 2 committed but not yet moved.
    assert SqliteInbox(paths["inbox.db"]).external_ids() == [mail_id(1), mail_id(2)]
    assert dovecot.message_ids("Processed") == [mail_id(1)]
    assert dovecot.message_ids("INBOX") == [mail_id(2), mail_id(3)]

    inbox = SqliteInbox(paths["inbox.db"])
    restarted = make_context(inbox.accept, tmp_path, JsonState(paths["state.json"]))
    taken = asyncio.run(poll_once(settings_for(dovecot), restarted))

    assert taken == 2
    assert inbox.external_ids() == [mail_id(1), mail_id(2), mail_id(3)]
    assert dovecot.message_ids("INBOX") == []
    assert dovecot.message_ids("Processed") == [mail_id(1), mail_id(2), mail_id(3)]


def test_idle_brings_mail_that_arrives_while_waiting(dovecot: Dovecot, tmp_path: Path) -> None:
    inbox, locks = MemoryInbox(), Locks()
    ctx = make_context(inbox.accept, tmp_path, locks=locks)
    dovecot.append(mail(1))

    def second_mail_arrived() -> bool:
        if len(inbox.rows) == 1 and not dovecot.message_ids("INBOX"):
            dovecot.append(mail(2))  # the poller is done with mail 1: this one must come by IDLE
        # Accepted is not yet filed: wait for the move too, or the service is stopped between the two.
        return len(inbox.rows) == 2 and not dovecot.message_ids("INBOX")

    # poll_seconds=120: without IDLE the second mail would not come within the 30 s the helper waits.
    run_service_until(settings_for(dovecot, poll_seconds=120), ctx, second_mail_arrived)

    assert dovecot.message_ids("Processed") == [mail_id(1), mail_id(2)]
    assert locks.held == [f"imap:{dovecot.username}@{dovecot.host}/INBOX"]


def test_without_idle_the_poller_polls(bare_dovecot: Dovecot, tmp_path: Path) -> None:
    inbox = MemoryInbox()
    bare_dovecot.append(mail(1))

    def second_mail_arrived() -> bool:
        if len(inbox.rows) == 1 and not bare_dovecot.message_ids("INBOX"):
            bare_dovecot.append(mail(2))
        return len(inbox.rows) == 2 and not bare_dovecot.message_ids("INBOX")

    run_service_until(
        settings_for(bare_dovecot, poll_seconds=0.2), make_context(inbox.accept, tmp_path), second_mail_arrived
    )

    assert bare_dovecot.message_ids("Processed") == [mail_id(1), mail_id(2)]


def test_a_failed_accept_leaves_the_mail_and_the_poller_reconnects_and_retries(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    inbox = MemoryInbox(fail_next=1)
    dovecot.append(mail(1))

    run_service_until(
        settings_for(dovecot),
        make_context(inbox.accept, tmp_path),
        lambda: len(inbox.rows) == 1 and not dovecot.message_ids("INBOX"),
    )

    assert inbox.calls == 2
    assert dovecot.message_ids("INBOX") == []
    assert dovecot.message_ids("Processed") == [mail_id(1)]


def test_settings_need_host_and_username_when_enabled_and_pick_the_port_from_ssl() -> None:
    with pytest.raises(ValidationError, match="host is empty"):
        ImapSettings.model_validate({"enabled": True, "username": "lapor"})
    with pytest.raises(ValidationError, match="processed_folder must differ"):
        ImapSettings.model_validate({"folder": "Lapor", "processed_folder": "Lapor"})
    assert ImapSettings().enabled is False
    assert ImapSettings(ssl=True).port_or_default == 993
    assert ImapSettings(ssl=False).port_or_default == 143
    assert ImapSettings(port=1143).port_or_default == 1143
