"""``complaints export``: every record (past the 10,000 a listing shows), streamed, in constant memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway import export
from gateway.cli import app
from sinks.store.db import Store
from tests.support.bulk import add_complaints
from tests.support.server import write_config

runner = CliRunner()


@pytest.fixture
def config_path(db_url: str, tmp_path: Path) -> Path:
    return write_config(tmp_path, db_url, 8080)


def test_export_streams_every_record_past_ten_thousand_oldest_first(config_path: Path, store: Store) -> None:
    add_complaints(store, 12_345)
    result = runner.invoke(app, ["--config", str(config_path), "complaints", "export", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 12_345
    assert len({record["tracking_id"] for record in records}) == 12_345
    assert records[0]["tracking_id"] == "LPR-B00000000" and records[-1]["tracking_id"] == "LPR-B00012344"
    assert records[0]["schema"] == "v1" and records[0]["reporter"]["name"] == "Warga 0"
    assert "exported 12345 complaint(s)" in result.stderr


def test_export_since_and_csv_with_dotted_columns(config_path: Path, store: Store, tmp_path: Path) -> None:
    add_complaints(store, 3000)
    target = tmp_path / "out.csv"
    since = "2026-01-01T00:40:00"  # START + 2400 s
    result = runner.invoke(
        app,
        ["--config", str(config_path), "complaints", "export", "-f", "csv", "--since", since, "-o", str(target)],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 600
    assert rows[0]["tracking_id"] == "LPR-B00002400"
    assert rows[0]["reporter.name"] == "Warga 2400" and rows[0]["reporter.anonymity"] == "public"
    assert rows[0]["attachments"] == "[]" and rows[0]["body"] == "Lampu jalan mati di gang 2400"


def _peak_bytes_of_export(store: Store) -> int:
    tracemalloc.start()
    try:
        sink = io.StringIO()
        # Written and forgotten line by line: what the iterator holds is what is measured.
        for record in export.records(store, page_size=500):
            sink.write(json.dumps(record))
            sink.seek(0)
            sink.truncate()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_memory_does_not_grow_with_the_number_of_records(store: Store) -> None:
    add_complaints(store, 2000)
    small = _peak_bytes_of_export(store)
    add_complaints(store, 8000, first=2000)
    large = _peak_bytes_of_export(store)  # five times the records
    assert large < small * 2, f"peak {large} bytes for 10,000 records against {small} for 2,000"
