"""Helpers for the web tests: the app in a real uvicorn server on a free loopback port, staff accounts,
a signed-in HTTP client, failed rows to replay, and Debian's Chromium for the browser tests."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select

from gateway import users
from gateway.app import Gateway, create_app
from gateway.config import Config
from gateway.registry import CHANNELS
from sinks.store.db import Store
from sinks.store.models import FAILED, Complaint, InboxMessage, StaffUser, utcnow

PASSWORD = "kata-sandi-uji-123"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_password_hash: str | None = None
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def quiet_channels() -> dict[str, Any]:
    """Only the staff-side channels: no SMTP listener or poller competing for ports in a test."""
    return {name: {"enabled": name in ("manual", "csv")} for name in CHANNELS}


@dataclass(frozen=True)
class Site:
    url: str
    store: Store
    config: Config
    gateway: Gateway


@contextmanager
def live_site(config: Config, store: Store) -> Iterator[Site]:
    """``create_app`` served by uvicorn in a thread; the lifespan (worker, inbox writer) runs as in production."""
    gateway = Gateway(config, store)
    server = uvicorn.Server(uvicorn.Config(create_app(gateway), log_level="warning", lifespan="on"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the server to start")
        host, port = sock.getsockname()
        yield Site(f"http://{host}:{port}", store, config, gateway)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll until ``condition`` is truthy; a bounded wait for background work, not a speed check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def add_staff(store: Store) -> None:
    """Agent ``siti`` and admin ``rina``; the hash is made once per run (argon2 is slow on purpose)."""
    global _password_hash
    _password_hash = _password_hash or users.hash_password(PASSWORD)
    with store.write() as session:
        for username, role in (("siti", "agent"), ("rina", "admin")):
            session.add(StaffUser(username=username, role=role, password_hash=_password_hash, created_at=utcnow()))


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "page has no CSRF token"
    return found.group(1)


@contextmanager
def signed_in(site: Site, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        page = client.get("/login")
        answer = client.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/"}
        )
        assert answer.status_code == 303, answer.text
        yield client


def post_form(client: httpx.Client, form_page: str, action: str, data: dict[str, Any]) -> httpx.Response:
    """Post a form the way a browser does: with the CSRF token of the page that shows it."""
    token = csrf_of(client.get(form_page).text)
    return client.post(action, data={**data, "csrf_token": token})


def complaints(store: Store) -> list[Complaint]:
    with store.read() as session:
        return list(session.execute(select(Complaint).order_by(Complaint.id)).scalars())  # type: ignore[arg-type]


def count_complaints(store: Store) -> int:
    with store.read() as session:
        return int(session.execute(select(func.count()).select_from(Complaint)).scalar_one())


def failed_row(
    store: Store,
    raw: bytes,
    channel: str = "manual",
    provider: str = "callcenter",
    error: str = "database was restarting",
    error_type: str = "StoreUnavailable",
    received_at: datetime | None = None,
) -> int:
    """A dead-lettered inbox row, as the worker leaves one after its last attempt."""
    now = received_at or utcnow()
    with store.write() as session:
        row = InboxMessage(
            channel=channel,
            provider=provider,
            external_id=f"failed-{now.timestamp()}-{len(raw)}-{os.urandom(4).hex()}",
            received_at=now,
            raw=raw,
            headers={},
            meta={"entered_by": "siti"},
            status=FAILED,
            attempts=3,
            next_attempt_at=now,
            last_error=error,
            error_type=error_type,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def chromium() -> str:
    """Debian's Chromium, installed with apt when missing and we are root; never a browser playwright downloads."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=environment)
    assert CHROMIUM.exists(), "Chromium is missing: apt-get install -y chromium"
    return str(CHROMIUM)
