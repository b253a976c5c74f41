"""Whether the store is up, said once: one line when it goes away, one when it is back.

Every store call goes through ``Store.read``/``Store.write``; an outage error
there becomes ``StoreUnavailable`` and is reported here, so the thousands of
requests refused during an outage make two log lines (and a reminder a
minute), not a traceback each. While the store is down a probe thread pings
it every second, so the recovery is noticed and logged without waiting for
traffic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

# Event names (dashboards and alerts match on them).
STORE_UNAVAILABLE = "store.unavailable"
STORE_STILL_UNAVAILABLE = "store.still_unavailable"
STORE_RECOVERED = "store.recovered"

PROBE_INTERVAL_S = 1.0
REMINDER_INTERVAL_S = 60.0


class StoreHealth:
    """Up/down state of one store, shared by every thread of the process."""

    def __init__(
        self,
        probe: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        probe_interval_s: float = PROBE_INTERVAL_S,
    ) -> None:
        self._probe = probe
        self._clock = clock
        self._probe_interval_s = probe_interval_s
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_reminder = 0.0
        self._refused_requests = 0
        self._refused_deliveries = 0
        self._error = ""
        self._outages = 0
        self._closed = threading.Event()

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    @property
    def outages(self) -> int:
        """How many outages this process has seen begin (for tests and metrics)."""
        return self._outages

    def failed(self, error: str) -> None:
        """A store call failed for want of the store; logs only when that is news (or once a minute)."""
        now = self._clock()
        start_probe = False
        with self._lock:
            if self._down_since is None:
                self._down_since = now
                self._last_reminder = now
                self._refused_requests = 0
                self._refused_deliveries = 0
                self._error = error
                self._outages += 1
                start_probe = self._probe is not None
                log.error(STORE_UNAVAILABLE, error=error)
            elif now - self._last_reminder >= REMINDER_INTERVAL_S:
                self._last_reminder = now
                log.error(
                    STORE_STILL_UNAVAILABLE,
                    error=error,
                    down_s=round(now - self._down_since, 1),
                    refused_requests=self._refused_requests,
                    refused_deliveries=self._refused_deliveries,
                )
        if start_probe:
            threading.Thread(target=self._run_probe, name="store-probe", daemon=True).start()

    def succeeded(self) -> None:
        """A store call worked: if the store was down, it is back (said once, with the outage's size)."""
        if self._down_since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._down_since is None:
                return
            down_s = self._clock() - self._down_since
            self._down_since = None
            log.warning(
                STORE_RECOVERED,
                down_s=round(down_s, 1),
                refused_requests=self._refused_requests,
                refused_deliveries=self._refused_deliveries,
                error=self._error,
            )

    def refused_request(self) -> None:
        """An edge answered "try later" to a request (HTTP 503) because of the outage."""
        with self._lock:
            self._refused_requests += 1

    def refused_deliveries(self, count: int) -> None:
        """The inbox could not take ``count`` messages (from any edge) because of the outage."""
        with self._lock:
            self._refused_deliveries += count

    def close(self) -> None:
        """The store is being disposed of: no more probing."""
        self._closed.set()

    def _run_probe(self) -> None:
        assert self._probe is not None
        while self.is_down and not self._closed.wait(self._probe_interval_s):
            try:
                self._probe()  # goes through Store.ping, which reports success or failure itself
            except Exception:  # still down: the probe tries again; the outage is already logged
                continue
