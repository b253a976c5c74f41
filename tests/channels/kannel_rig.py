"""A real Kannel on loopback: ``bearerbox`` + ``smsbox`` from Debian's ``kannel``, ``fakesmsc`` from ``kannel-extras``.

``fakesmsc`` plays the operator's SMSC: it connects to bearerbox's ``fake``
SMSC port, injects MO messages, and prints every MT message bearerbox routes
to it ("Got message N: <from to type data>"). smsbox calls our ``get-url`` for
each MO and serves ``/cgi-bin/sendsms`` for replies. Configs, logs and spools
live in a temporary directory; every port is a free one on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from channels import kannel
from tests.channels.sms_http_support import MemoryInbox, app_with, make_context, serve_app
from tests.support.server import free_port

FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
SENDSMS_USER = "lapor"
SENDSMS_PASSWORD = "rahasia-sendsms"
_MT_LINE = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>\s*$")


def ensure_kannel_installed() -> None:
    """Install the Debian packages when the daemons are missing (the tests run as root on Debian)."""
    if shutil.which("bearerbox") and shutil.which("smsbox") and FAKESMSC.exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "kannel", "kannel-extras"], check=True, env=env, capture_output=True
    )


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass(frozen=True)
class MtMessage:
    """An SMS bearerbox handed to the SMSC, as fakesmsc printed it."""

    sender: str
    receiver: str
    kind: str  # "text", "ucs-2", or "udh" for a part of a concatenated SMS
    data: str  # for "udh": "<url-encoded UDH> data <url-encoded text>"

    @property
    def udh(self) -> bytes:
        return unquote_to_bytes(self.data.split(" ")[0]) if self.kind == "udh" else b""

    @property
    def text(self) -> str:
        if self.kind == "ucs-2":
            return unquote_to_bytes(self.data.replace("+", " ")).decode("utf-16-be")
        if self.kind == "udh":
            return unquote_to_bytes(self.data.split(" ")[-1].replace("+", " ")).decode("latin-1")
        return self.data


class KannelRig:
    """bearerbox + smsbox running with a config whose sms-service calls ``get_url``."""

    def __init__(self, workdir: Path, get_url: str) -> None:
        self.workdir = workdir
        self.get_url = get_url
        self.admin_port, self.box_port, self.smsc_port, self.sendsms_port = (free_port() for _ in range(4))
        self._daemons: list[subprocess.Popen[bytes]] = []
        self._fakesmsc: subprocess.Popen[bytes] | None = None
        self._fakesmsc_logs: list[Path] = []

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def config(self) -> str:
        logs = self.workdir
        return f"""
group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = rig-admin
admin-allow-ip = 127.0.0.1
smsbox-port = {self.box_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{logs}/bearerbox.log"
log-level = 1

group = smsc
smsc = fake
smsc-id = fake
port = {self.smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.box_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
# A get-url answered with an error (our 503 when the store is down) is tried again, same %I.
http-request-retry = 3
http-queue-delay = 1
log-file = "{logs}/smsbox.log"
log-level = 1

group = sendsms-user
username = {SENDSMS_USER}
password = {SENDSMS_PASSWORD}
user-deny-ip = "*.*.*.*"
user-allow-ip = 127.0.0.1
# Long replies (status texts) go out as a concatenated SMS instead of being cut at 160 characters.
max-messages = 3
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
omit-empty = true
get-url = "{self.get_url}"
"""

    def start(self) -> KannelRig:
        ensure_kannel_installed()
        conf = self.workdir / "kannel.conf"
        conf.write_text(self.config())
        bearerbox = self._spawn(["bearerbox", str(conf)], "bearerbox.out")
        wait_for_port(self.box_port, bearerbox)
        wait_for_port(self.smsc_port, bearerbox)
        smsbox = self._spawn(["smsbox", str(conf)], "smsbox.out")
        wait_for_port(self.sendsms_port, smsbox)
        return self

    def _spawn(self, args: list[str], output: str) -> subprocess.Popen[bytes]:
        with open(self.workdir / output, "wb") as sink:
            process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, cwd=self.workdir)
        self._daemons.append(process)
        return process

    def inject(self, sender: str, receiver: str, text: str, *, ucs2: bool = False) -> None:
        """The SMSC delivers one MO message; this fakesmsc stays connected to receive the MT replies."""
        self._stop_fakesmsc()
        if ucs2:
            line = f"{sender} {receiver} ucs2 {quote(text.encode('utf-16-be'))}"
        else:
            line = f"{sender} {receiver} text {text}"
        log = self.workdir / f"fakesmsc-{len(self._fakesmsc_logs)}.out"
        self._fakesmsc_logs.append(log)
        with open(log, "wb") as sink:
            self._fakesmsc = subprocess.Popen(
                [str(FAKESMSC), "-H", "127.0.0.1", "-r", str(self.smsc_port), "-m", "1", line],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def mt_messages(self) -> list[MtMessage]:
        found: list[MtMessage] = []
        for log in self._fakesmsc_logs:
            for line in log.read_text(errors="replace").splitlines():
                match = _MT_LINE.search(line)
                if match:
                    found.append(MtMessage(*match.groups()))
        return found

    def wait_for_mt(self, count: int, timeout: float = 30.0) -> list[MtMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.mt_messages()
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"fakesmsc got {len(self.mt_messages())} MT messages, expected {count}")

    def _stop_fakesmsc(self) -> None:
        if self._fakesmsc is not None:
            self._fakesmsc.terminate()
            self._fakesmsc.wait(timeout=10)
            self._fakesmsc = None

    def stop(self) -> None:
        self._stop_fakesmsc()
        for process in reversed(self._daemons):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._daemons.clear()


@contextlib.contextmanager
def running_behind_webhook(
    make_rig: Callable[[int], KannelRig], secret: str
) -> Iterator[tuple[KannelRig, MemoryInbox]]:
    """Our Kannel webhook on a free port (into a MemoryInbox) and the rig ``make_rig(port)`` calling it."""
    port = free_port()
    rig = make_rig(port)
    inbox = MemoryInbox()
    settings = kannel.KannelSettings(enabled=True, secret=secret)
    with serve_app(app_with(kannel.router(settings, make_context(inbox))), port):
        rig.start()
        try:
            yield rig, inbox
        finally:
            rig.stop()
