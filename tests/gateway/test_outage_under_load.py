"""PostgreSQL stopped under a steady load of manual entries, as the operator in issue 11 did: the served gateway
answers 503 + Retry-After (never 500), logs the outage once (never a traceback), takes entries again as soon as
the server is back, and every acknowledged entry is one complaint — none lost, none stored twice."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from sinks.store.health import STORE_RECOVERED, STORE_UNAVAILABLE
from sinks.store.models import Complaint, InboxMessage
from tests.support.e2e import eventually
from tests.support.outage_load import Load, config_text, measure, prepared_store
from tests.support.pg_cluster import private_cluster, remove
from tests.support.server import free_port, serve

pytestmark = pytest.mark.slow


def test_postgres_stopped_under_load_loses_nothing_stores_nothing_twice_and_logs_the_outage_once(
    tmp_path: Path,
) -> None:
    cluster = private_cluster()
    try:
        url = cluster.schema_url(f"t_{uuid.uuid4().hex[:12]}")
        store, token = prepared_store(url)
        port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(config_text(tmp_path, url, port), encoding="utf-8")
        log = tmp_path / "gateway.log"
        served = serve(config, port, log)
        try:
            load = Load(served.url, token, threads=4)
            figures = measure(load, log, cluster.stop, cluster.start, outage_s=4.0)
            print(figures.as_json())  # the shape of an outage, for whoever reads the test's output

            def inbox_done() -> list[InboxMessage] | None:
                with store.read() as session:
                    rows = list(session.execute(select(InboxMessage)).scalars())
                return rows if rows and all(row.status == "done" for row in rows) else None

            rows = eventually(inbox_done, "every accepted entry processed", timeout=120)
        finally:
            served.stop()
        with store.read() as session:
            complaints = list(session.execute(select(Complaint)).scalars())
        store.dispose()
    finally:
        remove(cluster)

    assert set(figures.answers) <= {201, 202, 503}, figures.answers  # no 500, no dropped connection
    assert figures.refused > 0 and figures.refused_without_retry_after == 0
    assert figures.events.get(STORE_UNAVAILABLE) == 1
    assert figures.events.get(STORE_RECOVERED) == 1
    assert figures.tracebacks == 0
    assert figures.log_lines_during_outage < figures.refused  # not a line per refused request

    # Every acknowledged key is one inbox row and one complaint; nothing is there that was not acknowledged.
    by_key = {row.external_id: row for row in rows}
    assert set(by_key) == {f"beban:{key}" for key in load.acked}
    per_row = Counter(complaint.inbox_id for complaint in complaints)
    assert sorted(per_row) == sorted(row.id for row in rows)
    assert set(per_row.values()) == {1}
    for key, body in load.acked.items():
        if "tracking_id" in body:
            assert body["tracking_id"] in {complaint.tracking_id for complaint in complaints}, key
