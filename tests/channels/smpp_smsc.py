"""A small SMSC for the tests: a socket server on 127.0.0.1 speaking SMPP 3.4 with smpplib's PDU classes.

It takes binds (checking system_id and password), answers enquire_link,
submit_sm and unbind, sends deliver_sm on the test's command and records the
deliver_sm_resp status, and can drop the link or go mute to test reconnects.
Each connection is served by its own thread; the test thread drives it.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smpplib import consts, smpp

WAIT_S = 15.0


class _Sequencer:
    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def sequence(self) -> int:
        return 0

    def next_sequence(self) -> int:
        with self._lock:
            return next(self._numbers)


@dataclass
class Submitted:
    """A submit_sm as the SMSC saw it."""

    source_addr: str
    source_addr_ton: int
    destination_addr: str
    dest_addr_ton: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    message_id: str


@dataclass
class _Session:
    sock: socket.socket
    bound_as: str | None = None
    closed: threading.Event = field(default_factory=threading.Event)


class FakeSmsc:
    def __init__(self, system_id: str = "lapor", password: str = "rahasia", port: int = 0) -> None:
        self.system_id = system_id
        self.password = password
        self.binds: list[str] = []  # the bind command of every successful bind, in order
        self.events: list[str] = []  # "bind", "unbind", "closed" per connection, in the order they happened
        self.refused_binds = 0
        self.enquire_links = 0
        self.unbinds = 0
        self.submitted: list[Submitted] = []
        self.submit_status = consts.SMPP_ESME_ROK
        # When True the SMSC reads but answers nothing: a dead link the ESME must notice.
        self.mute = False
        self._responses: dict[int, int] = {}
        self._sequences = _Sequencer()
        self._message_ids = itertools.count(1)
        self._changed = threading.Condition()
        self._sessions: list[_Session] = []
        self._server = socket.create_server(("127.0.0.1", port))
        self.port: int = self._server.getsockname()[1]
        self._stopping = False
        threading.Thread(target=self._accept_loop, name="fake-smsc", daemon=True).start()

    # --- what tests call -------------------------------------------------------------------

    def wait_bound(self, count: int = 1) -> None:
        self._wait(lambda: len(self.binds) >= count and self._current() is not None, f"{count} bind(s)")

    def deliver(self, command: str = "deliver_sm", **fields: Any) -> int:
        """Sends a deliver_sm (or data_sm) built from smpplib fields on the current session; its sequence number."""
        pdu = smpp.make_pdu(command, client=self._sequences, **fields)
        self.send_raw(pdu.generate())
        return int(pdu.sequence)

    def send_raw(self, data: bytes) -> None:
        session = self._current()
        assert session is not None, "no bound session"
        session.sock.sendall(data)

    def deliver_raw(self, pdu: bytes) -> int:
        """Sends a recorded deliver_sm with a fresh sequence number (a redelivery gets a new one too)."""
        sequence = self._sequences.next_sequence()
        self.send_raw(pdu[:12] + sequence.to_bytes(4, "big") + pdu[16:])
        return sequence

    def wait_response(self, sequence: int) -> int:
        """The command_status of the deliver_sm_resp to ``sequence``."""
        self._wait(lambda: sequence in self._responses, f"deliver_sm_resp to #{sequence}")
        return self._responses[sequence]

    def wait_submitted(self, count: int) -> list[Submitted]:
        self._wait(lambda: len(self.submitted) >= count, f"{count} submit_sm")
        return self.submitted[:count]

    def wait_enquire_links(self, count: int) -> None:
        self._wait(lambda: self.enquire_links >= count, f"{count} enquire_link")

    def wait_refused_binds(self, count: int) -> None:
        self._wait(lambda: self.refused_binds >= count, f"{count} refused bind(s)")

    def wait_unbound(self, count: int = 1) -> None:
        self._wait(lambda: self.unbinds >= count, f"{count} unbind(s)")

    def wait_closed_sessions(self, count: int) -> None:
        self._wait(lambda: sum(s.closed.is_set() for s in self._sessions) >= count, f"{count} closed connection(s)")

    def drop_link(self) -> None:
        """Closes the current connection without a word, as a crashed SMSC or a cut cable would."""
        session = self._current()
        assert session is not None
        session.bound_as = None
        with contextlib.suppress(OSError):
            session.sock.shutdown(socket.SHUT_RDWR)
        session.sock.close()

    def close(self) -> None:
        self._stopping = True
        # shutdown wakes the thread blocked in accept(); a bare close would leave the port listening.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for session in self._sessions:
            with contextlib.suppress(OSError):
                session.sock.close()

    def __enter__(self) -> FakeSmsc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the server's side -----------------------------------------------------------------

    def _current(self) -> _Session | None:
        live = [s for s in self._sessions if s.bound_as and not s.closed.is_set()]
        return live[-1] if live else None

    def _wait(self, ready: Any, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(ready, timeout=WAIT_S):
                raise AssertionError(f"fake SMSC: no {what} within {WAIT_S}s")

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            session = _Session(sock)
            self._sessions.append(session)
            threading.Thread(target=self._serve, args=(session,), name="fake-smsc-session", daemon=True).start()

    def _frames(self, sock: socket.socket) -> Iterator[bytes]:
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while len(buffer) >= 4 and len(buffer) >= int.from_bytes(buffer[:4], "big"):
                length = int.from_bytes(buffer[:4], "big")
                yield buffer[:length]
                buffer = buffer[length:]

    def _serve(self, session: _Session) -> None:
        try:
            for frame in self._frames(session.sock):
                pdu = smpp.parse_pdu(frame, client=self._sequences, allow_unknown_opt_params=True)
                if not self.mute:
                    self._handle(session, pdu)
                self._notify()
        finally:
            session.closed.set()
            self.events.append("closed")
            self._notify()

    def _reply(self, session: _Session, command: str, request: Any, **fields: Any) -> None:
        resp = smpp.make_pdu(command, client=self._sequences, **fields)
        resp.sequence = request.sequence
        with contextlib.suppress(OSError):
            session.sock.sendall(resp.generate())

    def _handle(self, session: _Session, pdu: Any) -> None:
        name = pdu.command
        if name in ("bind_transceiver", "bind_receiver", "bind_transmitter"):
            good = pdu.system_id == self.system_id.encode() and pdu.password == self.password.encode()
            status = consts.SMPP_ESME_ROK if good else consts.SMPP_ESME_RINVPASWD
            self._reply(session, name + "_resp", pdu, status=status, system_id="fakesmsc")
            if good:
                session.bound_as = name
                self.binds.append(name)
                self.events.append("bind")
            else:
                self.refused_binds += 1
        elif name == "enquire_link":
            self.enquire_links += 1
            self._reply(session, "enquire_link_resp", pdu)
        elif name in ("deliver_sm_resp", "data_sm_resp"):
            self._responses[pdu.sequence] = int(pdu.status)
        elif name == "submit_sm":
            message_id = f"SMSC{next(self._message_ids):06d}"
            self.submitted.append(
                Submitted(
                    source_addr=pdu.source_addr.decode(),
                    source_addr_ton=int(pdu.source_addr_ton or 0),
                    destination_addr=pdu.destination_addr.decode(),
                    dest_addr_ton=int(pdu.dest_addr_ton or 0),
                    esm_class=int(pdu.esm_class or 0),
                    data_coding=int(pdu.data_coding or 0),
                    registered_delivery=int(pdu.registered_delivery or 0),
                    short_message=bytes(pdu.short_message or b""),
                    message_id=message_id,
                )
            )
            status = self.submit_status
            self._reply(session, "submit_sm_resp", pdu, status=status, message_id=message_id if not status else None)
        elif name == "unbind":
            self.unbinds += 1
            self.events.append("unbind")
            session.bound_as = None
            self._reply(session, "unbind_resp", pdu)
            with contextlib.suppress(OSError):
                session.sock.shutdown(socket.SHUT_RDWR)
