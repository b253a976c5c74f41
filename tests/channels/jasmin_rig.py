"""A real Jasmin on loopback: ``jasmind`` from PyPI's ``jasmin``, with the machine's Redis and RabbitMQ.

Jasmin's upstream is our SMSC stand-in (``tests/channels/smpp_smsc.py``): its SMPP client connector binds
to it, an MO ``deliver_sm`` from it goes through Jasmin's MO router to an HTTP connector posting to our
``/webhooks/jasmin``, and our replies go in through Jasmin's HTTP API ``/send`` and come out at the
stand-in as ``submit_sm``. Jasmin is configured with the very ``jcli`` steps of docs/channels/jasmin.md,
typed into its jCli console.

Jasmin (Twisted, txAMQP) is installed in a virtualenv of its own under the user's cache folder, made by
``ensure_jasmin`` the first time (pip, from PyPI); jasmind's config, store and logs live in the test's
directory (``ROOT_PATH``); every listener is on 127.0.0.1 on a free port, and the RabbitMQ vhost is
one of the rig's own, so two rigs never share a queue.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.channels.kannel_rig import wait_for_port
from tests.support.server import free_port

JASMIN_VERSION = "0.11.1"
# jcli's prompts: the main one, and the one of a multi-line command (an "add" or "update" session).
_PROMPT = re.compile(rb"(jcli : |> )$")
_TELNET_COMMAND = re.compile(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]")


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lapor-gateway" / f"jasmin-{JASMIN_VERSION}"


def ensure_jasmin() -> Path:
    """The venv's python, creating the venv with ``pip install jasmin`` when it is not there yet."""
    home = cache_dir()
    python = home / "venv" / "bin" / "python"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs make it once
        if not (home / "venv" / ".installed").exists():
            shutil.rmtree(home / "venv", ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True, timeout=300)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", f"jasmin=={JASMIN_VERSION}"],
                check=True,
                timeout=1200,
            )
            (home / "venv" / ".installed").touch()
    return python


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


class JCli:
    """Jasmin's console over its telnet port: type a line, read until the next prompt."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.transcript = ""
        # jCli shows its first prompt once the client has said something (it waits out telnet negotiation).
        self.type("")

    def _read_prompt(self) -> str:
        data = b""
        deadline = time.monotonic() + 60
        while not _PROMPT.search(data):
            if time.monotonic() > deadline:
                raise AssertionError(f"jcli gave no prompt: {data!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"jcli closed the connection: {data!r}")
            data = _TELNET_COMMAND.sub(b"", data + chunk)
        text = data.decode(errors="replace").replace("\r", "")
        self.transcript += text
        return text

    def type(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self._read_prompt()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"quit\r\n")
        self.sock.close()


class JasminRig:
    """``jasmind`` with its HTTP API, jCli, router and SMPP client manager on free loopback ports."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.jcli_port, self.http_port, self.router_port, self.smppcm_port = (free_port() for _ in range(4))
        # jCli and the throwers need Jasmin's own SMPP server up, though nothing binds to it here.
        self.smpp_server_port, self.smpp_server_pb_port = free_port(), free_port()
        self.vhost = f"lapor-test-{uuid.uuid4().hex[:8]}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def send_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/send"

    def config(self, python: Path) -> str:
        # txAMQP ships the AMQP 0-9-1 spec Jasmin's own tarball keeps under /etc/jasmin/resource.
        spec = next(
            python.parent.parent.glob("lib/python3*/site-packages/txamqp/specs/standard/amqp0-9-1.stripped.xml")
        )
        logs = self.workdir / "log"
        return f"""
[jcli]
bind = 127.0.0.1
port = {self.jcli_port}
authentication = False
log_file = {logs}/jcli.log

[http-api]
bind = 127.0.0.1
port = {self.http_port}
log_file = {logs}/http-api.log
access_log = {logs}/http-accesslog.log

[router]
bind = 127.0.0.1
port = {self.router_port}
store_path = {self.workdir}/store
log_file = {logs}/router.log

[client-management]
bind = 127.0.0.1
port = {self.smppcm_port}
store_path = {self.workdir}/store
log_file = {logs}/smppclient-manager.log

[smpp-server]
bind = 127.0.0.1
port = {self.smpp_server_port}
log_file = {logs}/smpp-server.log

[smpp-server-pb]
bind = 127.0.0.1
port = {self.smpp_server_pb_port}
log_file = {logs}/smpp-server-pb.log

[sm-listener]
log_file = {logs}/messages.log

[dlr]
log_file = {logs}/messages.log

[deliversm-thrower]
log_file = {logs}/deliversm-thrower.log

[dlr-thrower]
log_file = {logs}/dlr-thrower.log

[redis-client]
host = 127.0.0.1
port = 6379
log_file = {logs}/redis-client.log

[amqp-broker]
host = 127.0.0.1
port = 5672
vhost = {self.vhost}
spec = {spec}
log_file = {logs}/amqp-client.log
"""

    def start(self) -> JasminRig:
        python = ensure_jasmin()
        for folder in ("log", "store", "etc/jasmin"):
            (self.workdir / folder).mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "jasmin.cfg"
        conf.write_text(self.config(python))
        _rabbitmqctl("add_vhost", self.vhost)
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        env = {
            **os.environ,
            "ROOT_PATH": str(self.workdir),
            "LOG_PATH": str(self.workdir / "log"),
            "CONFIG_PATH": str(self.workdir / "etc" / "jasmin"),
        }
        jasmind = python.parent / "jasmind.py"
        with open(self.workdir / "jasmind.out", "wb") as sink:
            self._process = subprocess.Popen(
                [
                    str(python),
                    str(jasmind),
                    "-c",
                    str(conf),
                    "--enable-deliver-thrower",
                    "--enable-dlr-thrower",
                    "--enable-dlr-lookup",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
            )
        for port in (self.jcli_port, self.http_port):
            wait_for_port(port, self._process, timeout=90)
        return self

    def output(self) -> str:
        return (self.workdir / "jasmind.out").read_text(errors="replace")

    def jcli(self) -> JCli:
        return JCli(self.jcli_port)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _rabbitmqctl("delete_vhost", self.vhost)
