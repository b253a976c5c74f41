"""Who committed what, told to the processes waiting for it, so nobody waits out a poll interval.

Two channels: the inbox writer announces its committed rows (``INBOX_CHANNEL``, wakes workers) and a
worker its finished batch (``DONE_CHANNEL``, wakes requests waiting for their record). Callers say
``notifier_for(store).announce_in(session, channel)`` inside the transaction and ``listen`` in a thread
of their own; neither asks which store it is. The announcement is heard when the transaction commits,
and not at all when it rolls back.

PostgreSQL: ``NOTIFY`` in the transaction (the server delivers it at commit) and ``LISTEN`` on a
connection of the listener's own, across hosts.

SQLite: no server to carry a message, so a same-host doorbell. Why it is built this way:

- Unix datagram sockets, one per listener: a ring is one non-blocking ``sendto`` per listener, with no
  connection to keep, no server and no thread on the ringing side. The kernel queues the datagram before
  ``sendto`` returns; a listener's full buffer (``EAGAIN``) means it is woken already, so rings coalesce
  for free and a slow listener never holds up a commit.
- One socket file per listener in a directory per database: ringing is listing that directory. The
  directory is named by a hash of the resolved database path, so two spellings of one file meet and two
  installations on a host do not wake each other. It lives under ``/tmp/lapor-gateway-<uid>`` (mode
  0700, refused unless ours): an AF_UNIX path holds at most 107 bytes, which a data_dir (pytest's are
  long) may exceed, and every process of the installation must arrive at the same place, which a
  per-process ``TMPDIR`` would not guarantee. Another user can neither ring nor squat it.
- Not abstract-namespace sockets: Linux only, and listing them means parsing ``/proc/net/unix``.
- A listener killed by SIGKILL leaves its file behind; the next ring gets ``ECONNREFUSED`` from it and
  unlinks it. A listener looks every second that its own file is still there (a /tmp cleaner may take
  it) and binds again if not.
- At commit, as with NOTIFY: ``announce_in`` rings from SQLAlchemy's ``after_commit`` of the outermost
  transaction (a released savepoint is not a commit), after the rows are visible to the other processes.
- It never raises into the commit: a ring that fails is at most one log line, and the polls
  (``worker.poll_interval_s``, the waiting requests' fallback look) still find everything, only later.
  Processes that cannot share the directory (another uid, systemd's ``PrivateTmp``) fall back to them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import select
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import psycopg
import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, SessionTransaction

from gateway import logs
from sinks.store.db import Store, application_name

log = structlog.get_logger(__name__)

# Committed inbox rows (the inbox writer, at its commit): wakes workers in other processes.
INBOX_CHANNEL = "lapor_inbox"
# Inbox rows a worker finished (at its batch's commit): wakes requests waiting for them in other processes.
DONE_CHANNEL = "lapor_done"

# Short and the same for every process of the host (see the module docstring), not TMPDIR.
DOORBELL_ROOT = Path("/tmp")
# How often a listener looks at its stop event and at its own socket file.
_CHECK_S = 1.0


class Notifier(Protocol):
    def announce_in(self, session: Session, channel: str) -> None:
        """Announce on ``channel`` when ``session``'s transaction commits (nothing if it rolls back)."""

    def listen(self, channel: str, on_notify: Callable[[], None], stop: threading.Event, retry_s: float) -> None:
        """Call ``on_notify`` once on listening and for every announcement heard, until ``stop``."""

    def interrupt(self, channel: str) -> bool:
        """Wake this process's listeners on ``channel`` so they see their stop now; whether that works."""


def notifier_for(store: Store) -> Notifier:
    """LISTEN/NOTIFY on PostgreSQL, the doorbell on a SQLite file, nothing for an in-memory database."""
    return _notifier(store.url)


@cache
def _notifier(url: str) -> Notifier:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresNotifier(url)
    if not parsed.database or parsed.database == ":memory:" or not hasattr(socket, "AF_UNIX"):
        return Silent()  # nobody in another process can share it
    return Doorbell(doorbell_directory(parsed.database))


class Listening:
    """``notifier.listen`` in a daemon thread of its own, until ``close``."""

    def __init__(
        self, notifier: Notifier, channel: str, on_notify: Callable[[], None], retry_s: float, name: str
    ) -> None:
        self._notifier = notifier
        self._channel = channel
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=notifier.listen, args=(channel, on_notify, self._stop, retry_s), name=name, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop listening; a doorbell's socket file is gone on return (a process killed next leaves none)."""
        self._stop.set()
        if self._notifier.interrupt(self._channel):
            self._thread.join(timeout=_CHECK_S * 2)


class PostgresNotifier:
    def __init__(self, url: str) -> None:
        self.url = url

    def announce_in(self, session: Session, channel: str) -> None:
        session.execute(text(f"NOTIFY {channel}"))  # delivered by the server at commit

    def listen(self, channel: str, on_notify: Callable[[], None], stop: threading.Event, retry_s: float) -> None:
        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, application_name=application_name()) as connection:
                    connection.execute(f"LISTEN {channel}")
                    on_notify()  # whatever was announced before we listened
                    while not stop.is_set():
                        for _ in connection.notifies(timeout=_CHECK_S, stop_after=1):
                            on_notify()
            except psycopg.Error:
                # The polls still work without it; try to listen again shortly.
                stop.wait(retry_s)

    def interrupt(self, channel: str) -> bool:
        return False  # its thread sees the stop within a second and closes its connection then


class Silent:
    """An in-memory database: no other process can commit to it, so there is nobody to tell."""

    def announce_in(self, session: Session, channel: str) -> None:
        pass

    def listen(self, channel: str, on_notify: Callable[[], None], stop: threading.Event, retry_s: float) -> None:
        pass

    def interrupt(self, channel: str) -> bool:
        return True  # it never waited


def doorbell_directory(database: str) -> Path:
    """Where the listeners of one SQLite file keep their sockets: short, and the same for every process."""
    key = hashlib.sha1(os.path.realpath(database).encode(), usedforsecurity=False).hexdigest()[:12]
    return DOORBELL_ROOT / f"lapor-gateway-{os.getuid()}" / key


class Doorbell:
    """Same-host wake-ups for the processes of one SQLite database (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def announce_in(self, session: Session, channel: str) -> None:
        announced: tuple[Doorbell, set[str]] | None = session.info.get(_ANNOUNCED)
        if announced is None:
            announced = session.info[_ANNOUNCED] = (self, set())
            event.listen(session, "after_commit", _ring_announced)
            event.listen(session, "after_transaction_end", _forget_announced)
        announced[1].add(channel)

    def ring(self, channel: str) -> None:
        """Wake every process listening on ``channel`` for this database. Never raises."""
        try:
            listeners = self.listeners(channel)
        except OSError as exc:
            _say_once(logs.NOTIFY_RING_FAILED, directory=str(self.directory), error=str(exc))
            return
        for path in listeners:
            _ring_one(path)

    def listeners(self, channel: str) -> list[str]:
        """The socket files of everyone listening on ``channel`` (some may belong to the dead)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []  # nobody has listened yet
        prefix = f"{channel}."
        return [os.path.join(self.directory, name) for name in names if name.startswith(prefix)]

    @contextmanager
    def subscribe(self, channel: str) -> Iterator[Bell]:
        """A socket of this process's own in the directory, rung by ``ring``; removed on leaving."""
        bell = Bell(self.directory, channel)
        try:
            yield bell
        finally:
            bell.close()

    def listen(self, channel: str, on_notify: Callable[[], None], stop: threading.Event, retry_s: float) -> None:
        while not stop.is_set():
            try:
                with self.subscribe(channel) as bell:
                    on_notify()  # whatever was rung before we listened
                    while not stop.is_set() and bell.still_bound():
                        if bell.wait(_CHECK_S):
                            on_notify()
            except OSError as exc:
                # The polls still work without it; try to listen again shortly.
                _say_once(logs.NOTIFY_LISTEN_FAILED, directory=str(self.directory), error=str(exc))
                stop.wait(retry_s)

    def interrupt(self, channel: str) -> bool:
        # A ring: other processes' listeners on the channel take one needless look, once, at our shutdown.
        self.ring(channel)
        return True


class Bell:
    """One listener's datagram socket, bound at ``<directory>/<channel>.<pid>.<random>``."""

    def __init__(self, directory: Path, channel: str) -> None:
        self.directory = directory
        self.path = directory / f"{channel}.{os.getpid()}.{secrets.token_hex(3)}"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._socket.setblocking(False)
            for last_try in (False, True):
                _own_directory(directory)
                try:
                    self._socket.bind(str(self.path))
                    break
                except FileNotFoundError:
                    # The last listener took the directory away between our mkdir and bind: make it again, once.
                    if last_try:
                        raise
            self._inode = os.stat(self.path).st_ino
        except OSError:
            self._socket.close()
            raise
        # poll, not select: a busy gateway's descriptors may be past select's 1024.
        self._poll = select.poll()
        self._poll.register(self._socket, select.POLLIN)

    def wait(self, timeout_s: float) -> bool:
        """Whether it was rung within ``timeout_s`` (0: only look); every ring queued so far counts as one."""
        if not self._poll.poll(int(timeout_s * 1000)):
            return False
        while True:
            try:
                self._socket.recv(64)
            except BlockingIOError:
                return True

    def still_bound(self) -> bool:
        """Whether ringers can still find this socket (a /tmp cleaner may have removed its file)."""
        try:
            return os.stat(self.path).st_ino == self._inode
        except OSError:
            return False

    def close(self) -> None:
        self._socket.close()
        if self.still_bound():
            self.path.unlink(missing_ok=True)
        _remove_if_empty(self.directory)


_ANNOUNCED = "lapor.doorbell"  # session.info: (doorbell, channels announced in the open transaction)


def _ring_announced(session: Session) -> None:
    """after_commit: ring what the transaction announced; a released savepoint is not its commit."""
    try:
        if session.in_nested_transaction():
            return
        doorbell, channels = session.info[_ANNOUNCED]
        for channel in sorted(channels):
            doorbell.ring(channel)
        channels.clear()
    except Exception as exc:  # the commit has happened: nothing may turn it into an error now
        _say_once(logs.NOTIFY_RING_FAILED, error=f"{type(exc).__name__}: {exc}")


def _forget_announced(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ended without its commit (rolled back) announces nothing later."""
    if transaction.parent is None:
        session.info[_ANNOUNCED][1].clear()


_sender_lock = threading.Lock()
_sender_socket: socket.socket | None = None


def _sender() -> socket.socket:
    """One unbound, non-blocking datagram socket per process for every ring (sendto is thread-safe)."""
    global _sender_socket
    with _sender_lock:
        if _sender_socket is None:
            _sender_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender_socket.setblocking(False)
        return _sender_socket


def _ring_one(path: str) -> None:
    try:
        _sender().sendto(b"\1", path)
    except BlockingIOError:
        pass  # its buffer is full of rings it has not read yet: it is awake already
    except (ConnectionRefusedError, FileNotFoundError):
        # A listener that died without cleaning up (or is leaving right now): take its file away.
        with contextlib.suppress(OSError):
            os.unlink(path)
        _remove_if_empty(os.path.dirname(path))
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
            _say_once(logs.NOTIFY_RING_FAILED, socket=path, error=str(exc))


def _remove_if_empty(directory: str | Path) -> None:
    """One directory per database would pile up in /tmp otherwise (a listener arriving now binds again)."""
    with contextlib.suppress(OSError):  # not empty: others still listen
        os.rmdir(directory)


def _own_directory(directory: Path) -> None:
    """Make ``directory`` (and its parent) if needed; refuse a parent someone else owns or can enter."""
    parent = directory.parent
    parent.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(parent)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{parent} is not a private directory of this user: the doorbell stays off")
    directory.mkdir(mode=0o700, exist_ok=True)


_said: set[str] = set()


def _say_once(event_name: str, **context: Any) -> None:
    """A doorbell that cannot ring is worth one warning per process and kind, not one per commit."""
    key = f"{event_name}:{context.get('error', '')}"
    if key in _said:
        log.debug(event_name, **context)
        return
    _said.add(key)
    log.warning(event_name, **context)
