"""A steady load of manual entries against a served gateway while its store goes away and comes back.

Each load thread enters complaints one after another, each with an
Idempotency-Key of its own; a 503 is retried with the same key until it is
taken (201, or 202 "still processing"), so every key ends acknowledged once.
The test (``tests/gateway/test_outage_under_load.py``) and the measurement for
the issue note (``python -m tests.support.outage_load --outage-s 20``) both
use it: ``run`` starts a private PostgreSQL (or a SQLite on a small file
system), the gateway, the load, and the outage, and returns what it saw.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.auth import create_token
from sinks.store.db import Store, open_store, upgrade

ACKED = (201, 202)


@dataclass
class Answer:
    at: float
    key: str
    status: int
    retry_after: str | None


@dataclass
class Load:
    """The answers of every request, and the keys that were acknowledged (with their records)."""

    url: str
    token: str
    threads: int = 4
    pause_after_refusal_s: float = 0.1
    answers: list[Answer] = field(default_factory=list)
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for number in range(self.threads):
            worker = threading.Thread(target=self._run, args=(number,), name=f"load-{number}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def finish(self, timeout: float = 120.0) -> None:
        """Stop starting new keys; the keys under way are retried until taken."""
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout)
            assert not worker.is_alive(), "a load thread never got its last entry taken"

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def refused_count(self) -> int:
        with self._lock:
            return sum(1 for answer in self.answers if answer.status == 503)

    def acked_since(self, moment: float) -> int:
        with self._lock:
            return sum(1 for answer in self.answers if answer.status in ACKED and answer.at >= moment)

    def _run(self, number: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, timeout=60) as client:
            index = 0
            while not self.stop.is_set():
                index += 1
                key = f"load-{number}-{index}-{uuid.uuid4().hex[:6]}"
                body = {"body": f"Lampu jalan mati, laporan beban {number}/{index}", "source": "phone"}
                while True:
                    try:
                        response = client.post(
                            "/api/v1/complaints", json=body, headers={**headers, "Idempotency-Key": key}
                        )
                        status, retry_after = response.status_code, response.headers.get("retry-after")
                    except httpx.HTTPError:
                        status, retry_after = 0, None  # the connection itself failed: counted, retried
                    with self._lock:
                        self.answers.append(Answer(time.monotonic(), key, status, retry_after))
                        if status in ACKED:
                            self.acked[key] = response.json()
                    if status in ACKED or status not in (0, 503):
                        break
                    time.sleep(self.pause_after_refusal_s)


@dataclass
class Figures:
    """What an outage looked like from outside: answers, log lines, recovery time."""

    outage_s: float
    answers: dict[int, int]
    refused: int
    refused_without_retry_after: int
    acked: int
    recovery_s: float
    log_lines_total: int
    log_lines_during_outage: int
    tracebacks: int
    events: dict[str, int]

    def as_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def log_events(log: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"event": "<not json>", "line": line})
    return events


def measure(
    load: Load,
    log: Path,
    break_store: Callable[[], None],
    mend_store: Callable[[], None],
    outage_s: float,
    warm_up: int = 20,
    after: int = 20,
    deadline_s: float = 120.0,
) -> Figures:
    """Load, break the store for ``outage_s``, mend it, load on until ``after`` more entries are taken."""
    load.start()
    _wait(lambda: load.acked_count() >= warm_up, "the warm-up entries", deadline_s)
    lines_before = len(log.read_text(encoding="utf-8").splitlines())
    broken_at = time.monotonic()
    break_store()
    _wait(lambda: load.refused_count() > 0, "the first refusal", deadline_s)
    time.sleep(max(0.0, outage_s - (time.monotonic() - broken_at)))
    mend_store()
    mended_at = time.monotonic()
    _wait(lambda: load.acked_since(mended_at) >= 1, "an entry taken after the store came back", deadline_s)
    recovery_s = min(answer.at for answer in load.answers if answer.status in ACKED and answer.at >= mended_at)
    lines_during = len(log.read_text(encoding="utf-8").splitlines()) - lines_before
    _wait(lambda: load.acked_since(mended_at) >= after, "entries after the outage", deadline_s)
    load.finish()
    events = log_events(log)
    text = log.read_text(encoding="utf-8", errors="replace")
    statuses = Counter(answer.status for answer in load.answers)
    return Figures(
        outage_s=round(mended_at - broken_at, 1),
        answers=dict(sorted(statuses.items())),
        refused=statuses[503],
        refused_without_retry_after=sum(1 for a in load.answers if a.status == 503 and not a.retry_after),
        acked=len(load.acked),
        recovery_s=round(recovery_s - mended_at, 2),
        log_lines_total=len(text.splitlines()),
        log_lines_during_outage=lines_during,
        tracebacks=text.count("Traceback"),
        events=dict(Counter(str(event.get("event")) for event in events)),
    )


def _wait(condition: Callable[[], bool], what: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def config_text(directory: Path, db_url: str, port: int) -> str:
    return (
        f"database:\n  url: {db_url}\n"
        f"http:\n  host: 127.0.0.1\n  port: {port}\n  public_url: http://127.0.0.1:{port}\n"
        f"data_dir: {directory / 'data'}\n"
        "logging:\n  format: json\n  level: info\n"
        "channels:\n  smtp:\n    enabled: false\n"
    )


def prepared_store(db_url: str) -> tuple[Store, str]:
    store = open_store(db_url)
    upgrade(store)
    return store, create_token(store, "beban", "agent")


def _main() -> None:
    """Measure a PostgreSQL outage under load (the figures for the issue note)."""
    from tests.support.pg_cluster import private_cluster, remove
    from tests.support.server import free_port, serve

    parser = argparse.ArgumentParser()
    parser.add_argument("--outage-s", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    cluster = private_cluster()
    try:
        store, token = prepared_store(cluster.schema_url("measure"))
        port = free_port()
        config = args.dir / "config.yaml"
        config.write_text(config_text(args.dir, cluster.schema_url("measure"), port), encoding="utf-8")
        log = args.dir / "gateway.log"
        served = serve(config, port, log)
        try:
            load = Load(served.url, token, threads=args.threads)
            figures = measure(load, log, cluster.stop, cluster.start, args.outage_s)
        finally:
            served.stop()
        store.dispose()
        print(figures.as_json())
    finally:
        remove(cluster)


if __name__ == "__main__":
    _main()
