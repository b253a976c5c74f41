"""A real Dovecot IMAP server on a free loopback port, for the IMAP poller's tests.

Dovecot comes from Debian's ``dovecot-imapd`` package (installed here with
apt-get when missing). Each rig writes a standalone ``dovecot.conf`` in its own
temporary directory: plaintext auth on 127.0.0.1 only (or implicit TLS with a
self-signed certificate), one passwd-file user, maildir storage in the same
directory. ``capabilities`` can narrow what the server advertises (no IDLE, no
MOVE) to exercise the poller's fallbacks.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

from tests.support.server import free_port

USERNAME = "pelapor"
PASSWORD = "rahasia-uji"  # a throwaway test secret, valid only inside the temp rig
# What Dovecot 2.3 advertises after login, minus IDLE and MOVE: the poller must poll and COPY+EXPUNGE.
BARE_CAPABILITIES = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS"


def ensure_command(command: str, package: str) -> str:
    """The path of ``command``; installs the Debian ``package`` that has it when it is missing."""
    binary = shutil.which(command)
    if binary is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
        binary = shutil.which(command)
    if binary is None:
        raise RuntimeError(f"{command} is not installed and apt-get could not install {package}")
    return binary


def ensure_dovecot() -> str:
    """The dovecot binary (Debian's dovecot-imapd, installed when missing); a 2.3 release."""
    binary = ensure_command("dovecot", "dovecot-imapd")
    version = subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout
    if not version.startswith("2.3"):
        raise RuntimeError(f"dovecot_rig writes a Dovecot 2.3 configuration; found {version.strip()}")
    return binary


@dataclass(frozen=True)
class Dovecot:
    host: str
    port: int
    username: str
    password: str
    root: Path
    # Set when the rig speaks implicit TLS (imaps): the self-signed certificate to trust.
    ca_file: Path | None = None

    def client(self) -> IMAPClient:
        """A logged-in imapclient for test set-up and assertions."""
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None
        client = IMAPClient(self.host, port=self.port, ssl=self.ca_file is not None, ssl_context=context, timeout=10)
        client.login(self.username, self.password)
        return client

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        with self.client() as client:
            for message in messages:
                client.append(folder, message)

    def message_ids(self, folder: str) -> list[str]:
        """Message-ID header of every mail in ``folder`` ("" for a mail without one; none when no folder)."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
            lines = [data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip() for data in fetched.values()]
            return sorted(line.partition(":")[2].strip() for line in lines)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert, key) PEM files for 127.0.0.1 (an IP subjectAltName), so a client can verify against the cert itself."""
    openssl = ensure_command("openssl", "openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    request = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [*request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def _config(root: Path, port: int, capabilities: str | None, tls: bool) -> str:
    mail_user = pwd.getpwnam("nobody")
    capability_line = f"imap_capability = {capabilities}\n" if capabilities else ""
    if tls:
        ssl_lines = f"ssl = required\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem\n"
        ssl_lines += "ssl_dh = </usr/share/dovecot/dh.pem\n" if Path("/usr/share/dovecot/dh.pem").exists() else ""
        imap_port, imaps_port = 0, port
    else:
        ssl_lines, imap_port, imaps_port = "ssl = no\n", port, 0
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_lines}disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
{capability_line}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def _wait_for_greeting(port: int, process: subprocess.Popen[bytes], log: Path, tls: bool) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited with {process.returncode}: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as plain:
                sock = ssl._create_unverified_context().wrap_socket(plain) if tls else plain
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"dovecot did not greet on port {port}: {log.read_text(errors='replace') if log.exists() else ''}"
    )


@contextmanager
def running_dovecot(capabilities: str | None = None, tls: bool = False) -> Iterator[Dovecot]:
    """Start a private Dovecot (plain IMAP, or implicit TLS with ``tls``); stop it and remove its files after."""
    binary = ensure_dovecot()
    root = Path(tempfile.mkdtemp(prefix="dovecot-rig-"))
    # Dovecot's login and mail processes run unprivileged: they must reach the rig's files.
    root.chmod(0o755)
    mail_user = pwd.getpwnam("nobody")
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(root / sub, mail_user.pw_uid, mail_user.pw_gid)
    (root / "users").write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}\n")
    ca_file = self_signed_certificate(root)[0] if tls else None
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, capabilities, tls))
    process = subprocess.Popen([binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_greeting(port, process, root / "dovecot.log", tls)
        yield Dovecot("127.0.0.1", port, USERNAME, PASSWORD, root, ca_file)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(root, ignore_errors=True)
