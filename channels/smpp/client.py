"""The SMPP bind: one ESME session at a time, kept up with enquire_link and rebuilt with backoff.

smpplib is blocking, so each session's read loop runs in its own thread. Every
deliver_sm is handed back to the gateway's event loop with
``run_coroutine_threadsafe`` and the thread waits for the status to answer:
the inbox, the state store and the reassembly lock then live on the loop
thread like every other channel's (store sessions, SQLite connections and
asyncio locks are not ours to share across threads). A second event loop inside
the thread would have meant two loops touching one ChannelContext.

We use smpplib's ``Client`` for connecting, binding and writing PDUs, but read
frames ourselves: its ``listen()`` drops a half-read PDU on a socket timeout,
does not answer ``unbind`` and cannot tell a dead link from a quiet one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from smpplib import consts, exceptions, smpp
from smpplib.client import Client, SimpleSequenceGenerator

from channels.base import ChannelContext
from channels.smpp.concat import STATUS_RETRY, Inbound
from channels.smpp.message import DATA_SM, DELIVER_SM, command_id, parse_pdu, sequence_number
from channels.smpp.settings import SmppSettings

log = structlog.get_logger(__name__)

EVENT_BOUND = "smpp.bound"
EVENT_LINK_LOST = "smpp.link_lost"
EVENT_RECONNECTING = "smpp.reconnecting"
EVENT_UNHANDLED = "smpp.unhandled_pdu"

BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0
# The SMSC waits this long for a deliver_sm_resp before it re-sends; answer "retry" before that.
ACCEPT_TIMEOUT_S = 25.0
SUBMIT_TIMEOUT_S = 30.0
UNBIND_WAIT_S = 5.0
UNANSWERED_ENQUIRE_LINKS = 3
MAX_PDU_OCTETS = 64 * 1024
GENERIC_NACK = 0x80000000
SUBMIT_SM_RESP = 0x80000004
ENQUIRE_LINK = 0x00000015

Deliver = Callable[[bytes], Coroutine[Any, Any, int]]


class LinkDown(exceptions.ConnectionError):  # type: ignore[misc]
    """The session ended: socket closed, unbind, or no answer to enquire_link."""


class _Sequences(SimpleSequenceGenerator):  # type: ignore[misc]
    """smpplib's generator, made safe for the read thread and the loop thread submitting at once."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            return int(super().next_sequence())


class _Esme(Client):  # type: ignore[misc]
    """smpplib's client with locked writes and a frame reader that survives a quiet link."""

    def __init__(self, settings: SmppSettings) -> None:
        super().__init__(
            settings.host,
            settings.port,
            timeout=settings.enquire_link_s,
            sequence_generator=_Sequences(),
            logger_name="smpplib.client",
            allow_unknown_opt_params=True,
        )
        self._send_lock = threading.Lock()

    def send_pdu(self, p: Any) -> bool:
        with self._send_lock:
            return bool(super().send_pdu(p))

    def read_frame(self) -> bytes | None:
        """One whole PDU, or None after a socket timeout with nothing read."""
        header = self._read(4, idle_is_ok=True)
        if header is None:
            return None
        length = int.from_bytes(header, "big")
        if not 16 <= length <= MAX_PDU_OCTETS:
            raise LinkDown(f"PDU length {length} out of range")
        rest = self._read(length - 4, idle_is_ok=False)
        assert rest is not None
        return header + rest

    def _read(self, size: int, idle_is_ok: bool) -> bytes | None:
        chunks: list[bytes] = []
        received = 0
        stalls = 0
        while received < size:
            sock = self._socket
            if sock is None:
                raise LinkDown("socket closed")
            try:
                chunk = sock.recv(size - received)
            except TimeoutError:
                if received == 0 and idle_is_ok:
                    return None
                stalls += 1
                if stalls >= UNANSWERED_ENQUIRE_LINKS:
                    raise LinkDown("SMSC stalled in the middle of a PDU") from None
                continue
            except OSError as exc:
                raise LinkDown(str(exc)) from exc
            if not chunk:
                raise LinkDown("closed by the SMSC")
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    def shutdown(self) -> None:
        """Wakes the read thread from another thread; it closes the socket on its way out."""
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class SmppLink:
    """One session: connect, bind, read until the link goes, then clean up."""

    def __init__(self, settings: SmppSettings, loop: asyncio.AbstractEventLoop, deliver: Deliver) -> None:
        self.settings = settings
        self.was_bound = False
        self._loop = loop
        self._deliver = deliver
        self._esme = _Esme(settings)
        self._pending: dict[int, concurrent.futures.Future[tuple[int, str | None]]] = {}
        self._pending_lock = threading.Lock()

    # --- the loop thread's side -------------------------------------------------------------

    async def run(self) -> None:
        """Runs the session in its thread until it ends; cancelling unbinds and waits for the thread."""
        finished: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(target=self._thread_main, args=(finished,), name="smpp-bind", daemon=True)
        thread.start()
        done = asyncio.wrap_future(finished)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            # Unbind politely and let the read thread see the unbind_resp; cut the socket if that takes too
            # long. The thread may be waiting on a deliver_sm this loop still has to finish: keep awaiting.
            if self.was_bound:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._esme.send_pdu, smpp.make_pdu("unbind", client=self._esme))
            await asyncio.wait([done], timeout=UNBIND_WAIT_S)
            if not done.done():
                self._esme.shutdown()
                await asyncio.wait([done], timeout=ACCEPT_TIMEOUT_S + UNBIND_WAIT_S)
            if done.done() and not done.cancelled():
                done.exception()  # the session ending is what we asked for: mark its outcome as seen
            raise

    async def submit(self, **fields: Any) -> tuple[int, str | None]:
        """Sends one submit_sm; ``(command_status, message_id)`` from its submit_sm_resp."""
        pdu = smpp.make_pdu("submit_sm", client=self._esme, **fields)
        answer: concurrent.futures.Future[tuple[int, str | None]] = concurrent.futures.Future()
        with self._pending_lock:
            self._pending[pdu.sequence] = answer
        try:
            await asyncio.to_thread(self._esme.send_pdu, pdu)
            return await asyncio.wait_for(asyncio.wrap_future(answer), SUBMIT_TIMEOUT_S)
        finally:
            with self._pending_lock:
                self._pending.pop(pdu.sequence, None)

    # --- the read thread's side -------------------------------------------------------------

    def _thread_main(self, finished: concurrent.futures.Future[None]) -> None:
        try:
            self._session()
        except BaseException as exc:
            finished.set_exception(exc)
        else:
            finished.set_result(None)

    def _session(self) -> None:
        settings = self.settings
        try:
            self._esme.connect()
            bind = self._esme.bind_transceiver if settings.bind_mode == "transceiver" else self._esme.bind_receiver
            bind(
                system_id=settings.system_id,
                password=settings.password.get_secret_value(),
                system_type=settings.system_type,
            )
            self.was_bound = True
            _LINKS[settings.system_id] = self
            log.info(EVENT_BOUND, host=settings.host, port=settings.port, mode=settings.bind_mode)
            self._read_loop()
        finally:
            if _LINKS.get(settings.system_id) is self:
                del _LINKS[settings.system_id]
            with self._pending_lock:
                for answer in self._pending.values():
                    if not answer.done():
                        answer.set_exception(LinkDown("link lost before submit_sm_resp"))
                self._pending.clear()
            self._esme.state = consts.SMPP_CLIENT_STATE_OPEN  # we said goodbye or the link is gone anyway
            with contextlib.suppress(Exception):
                self._esme.disconnect()

    def _read_loop(self) -> None:
        unanswered = 0
        while True:
            frame = self._esme.read_frame()
            if frame is None:
                if unanswered >= UNANSWERED_ENQUIRE_LINKS:
                    raise LinkDown(f"{unanswered} enquire_link without an answer")
                self._esme.send_pdu(smpp.make_pdu("enquire_link", client=self._esme))
                unanswered += 1
                continue
            unanswered = 0
            if not self._dispatch(frame):
                return

    def _dispatch(self, frame: bytes) -> bool:
        """Acts on one PDU; False when the SMSC ended the session."""
        command = command_id(frame)
        sequence = sequence_number(frame)
        if command in (DELIVER_SM, DATA_SM):
            self._respond("deliver_sm_resp" if command == DELIVER_SM else "data_sm_resp", sequence, self._store(frame))
            return True
        try:
            pdu = parse_pdu(frame)
        except Exception as exc:  # a PDU smpplib cannot read must not end the bind
            log.warning(EVENT_UNHANDLED, command=hex(command), error=str(exc))
            if not command & GENERIC_NACK:
                self._respond("generic_nack", sequence, consts.SMPP_ESME_RINVCMDID)
            return True
        name = pdu.command
        if name in ("submit_sm_resp", "generic_nack"):
            with self._pending_lock:
                answer = self._pending.get(sequence)
            if answer is not None and not answer.done():
                message_id = pdu.message_id.decode("latin-1") if getattr(pdu, "message_id", None) else None
                answer.set_result((int(pdu.status), message_id))
        elif name == "enquire_link":
            self._respond("enquire_link_resp", sequence)
        elif name == "unbind":
            self._respond("unbind_resp", sequence)
            return False
        elif name == "unbind_resp":
            return False
        elif name not in ("enquire_link_resp", "alert_notification"):  # alert_notification has no resp
            log.warning(EVENT_UNHANDLED, command=name)
            if not command & GENERIC_NACK:
                self._respond("generic_nack", sequence, consts.SMPP_ESME_RINVCMDID)
        return True

    def _store(self, frame: bytes) -> int:
        """Waits for the loop to put the deliver_sm in the inbox (or state); the status to answer with."""
        try:
            pending = asyncio.run_coroutine_threadsafe(self._deliver(frame), self._loop)
        except RuntimeError:  # the loop is gone: the gateway is shutting down
            return STATUS_RETRY
        try:
            return pending.result(ACCEPT_TIMEOUT_S)
        except Exception:
            pending.cancel()
            return STATUS_RETRY

    def _respond(self, command: str, sequence: int, status: int = consts.SMPP_ESME_ROK) -> None:
        resp = smpp.make_pdu(command, client=self._esme, status=status)
        resp.sequence = sequence
        self._esme.send_pdu(resp)


# The live binds of this process by system_id, so ``send`` can submit through them.
_LINKS: dict[str, SmppLink] = {}


def live_link(system_id: str) -> SmppLink | None:
    return _LINKS.get(system_id)


Submitted = tuple[int, str | None]  # (command_status, message_id) of a submit_sm_resp
_TRANSMIT_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def submit_all(settings: SmppSettings, submits: list[dict[str, Any]]) -> list[Submitted]:
    """Submits the parts of one reply in order, stopping at the first refusal.

    Through this process's live bind when it holds one; otherwise (another gateway
    instance holds the receiving bind, or it is between reconnects) through a short
    bind_transmitter of its own: a transmitter receives no deliver_sm, so it does not
    compete with the one receiving bind.
    """
    link = live_link(settings.system_id)
    if link is None:
        # One transmitter bind at a time per event loop: the outbox sends a whole batch at once,
        # and operators cap the binds of an account.
        lock = _TRANSMIT_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(_transmit_once, settings, submits)
    results: list[Submitted] = []
    for fields in submits:
        results.append(await link.submit(**fields))
        if results[-1][0] != consts.SMPP_ESME_ROK:
            break
    return results


def _transmit_once(settings: SmppSettings, submits: list[dict[str, Any]]) -> list[Submitted]:
    """Blocking: connect, bind_transmitter, submit each part and read its resp, unbind."""
    esme = _Esme(settings)
    results: list[Submitted] = []
    try:
        esme.connect()
        esme.bind_transmitter(
            system_id=settings.system_id,
            password=settings.password.get_secret_value(),
            system_type=settings.system_type,
        )
        for fields in submits:
            pdu = smpp.make_pdu("submit_sm", client=esme, **fields)
            esme.send_pdu(pdu)
            results.append(_answer_to(esme, int(pdu.sequence)))
            if results[-1][0] != consts.SMPP_ESME_ROK:
                break
        with contextlib.suppress(Exception):
            esme.unbind()
    finally:
        esme.state = consts.SMPP_CLIENT_STATE_OPEN
        with contextlib.suppress(Exception):
            esme.disconnect()
    return results


def _answer_to(esme: _Esme, sequence: int) -> Submitted:
    deadline = time.monotonic() + SUBMIT_TIMEOUT_S
    while time.monotonic() < deadline:
        frame = esme.read_frame()
        if frame is None:
            continue
        if sequence_number(frame) == sequence and command_id(frame) in (SUBMIT_SM_RESP, GENERIC_NACK):
            pdu = parse_pdu(frame)
            message_id = pdu.message_id.decode("latin-1") if getattr(pdu, "message_id", None) else None
            return int(pdu.status), message_id
        if command_id(frame) == ENQUIRE_LINK:
            resp = smpp.make_pdu("enquire_link_resp", client=esme)
            resp.sequence = sequence_number(frame)
            esme.send_pdu(resp)
    raise LinkDown("no submit_sm_resp in time")


async def keep_bound(settings: SmppSettings, deliver: Deliver) -> None:
    """Binds, and binds again with capped exponential backoff whenever the link goes, forever."""
    delay = BACKOFF_INITIAL_S
    loop = asyncio.get_running_loop()
    while True:
        link = SmppLink(settings, loop, deliver)
        try:
            await link.run()
            reason = "session ended"
        except Exception as exc:  # whatever ended the session, the answer is the same: back off, bind again
            reason = f"{type(exc).__name__}: {exc}"
        if link.was_bound:
            delay = BACKOFF_INITIAL_S
        log.warning(EVENT_LINK_LOST, reason=reason, was_bound=link.was_bound)
        log.info(EVENT_RECONNECTING, in_s=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_S)


async def service(settings: SmppSettings, ctx: ChannelContext) -> None:
    """The bind, held by one gateway instance at a time, plus the sweep that stores timed-out parts."""
    async with ctx.exclusive("smpp"):
        inbound = Inbound(ctx, settings.default_alphabet, settings.concat_timeout_s)
        sweeper = asyncio.create_task(inbound.sweep_forever())
        try:
            await keep_bound(settings, inbound.handle)
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
