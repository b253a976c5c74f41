"""PostgreSQL LISTEN/NOTIFY between processes: who committed what, so nobody waits out a poll interval."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from sinks.store.db import application_name

# Committed inbox rows (the inbox writer, at its commit): wakes workers in other processes.
INBOX_CHANNEL = "lapor_inbox"
# Inbox rows a worker finished (at its batch's commit): wakes requests waiting for them in other processes.
DONE_CHANNEL = "lapor_done"


def listen(url: str, channel: str, on_notify: Callable[[], None], stop: threading.Event, retry_s: float) -> None:
    """Call ``on_notify`` for every notification on ``channel`` until ``stop`` (run it in a thread of its own)."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True, application_name=application_name()) as connection:
                connection.execute(f"LISTEN {channel}")
                on_notify()  # whatever was announced before we listened
                while not stop.is_set():
                    for _ in connection.notifies(timeout=1.0, stop_after=1):
                        on_notify()
        except psycopg.Error:
            # The polls still work without it; try to listen again shortly.
            stop.wait(retry_s)
