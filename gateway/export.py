"""``complaints export``: every record, streamed page by page, in constant memory (jsonl or CSV)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TextIO

import orjson

from sinks.store import queries
from sinks.store.db import Store

PAGE_SIZE = 1000


def records(store: Store, since: datetime | None = None, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
    """Schema-v1 records oldest first; one short read per page, so no transaction stays open for the export."""
    after = 0
    while True:
        with store.read() as session:
            page = queries.complaints_after(session, after, since, page_size)
            rows = [queries.complaint_record(complaint) for complaint in page]
        if not page:
            return
        after = page[-1].id or after
        yield from rows


def columns_of(record: dict[str, Any]) -> list[str]:
    """CSV columns from the first record: an object it has becomes dotted columns (``reporter.phone``)."""
    names: list[str] = []
    for key, value in record.items():
        if isinstance(value, dict):
            names.extend(f"{key}.{inner}" for inner in value)
        else:
            names.append(key)
    return names


def csv_row(record: dict[str, Any], columns: list[str]) -> list[Any]:
    """A record's cells; lists, and objects the first record did not have, are JSON in one cell."""
    cells: list[Any] = []
    for column in columns:
        outer, _, inner = column.partition(".")
        value = record.get(outer)
        if inner:
            value = value.get(inner) if isinstance(value, dict) else None
        cells.append(json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value)
    return cells


def write_jsonl(rows: Iterator[dict[str, Any]], out: TextIO, progress: Callable[[], None]) -> int:
    count = 0
    for row in rows:
        out.write(orjson.dumps(row).decode())
        out.write("\n")
        count += 1
        progress()
    return count


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO, progress: Callable[[], None]) -> int:
    writer = csv.writer(out)
    columns: list[str] | None = None
    count = 0
    for row in rows:
        if columns is None:
            columns = columns_of(row)
            writer.writerow(columns)
        writer.writerow(csv_row(row, columns))
        count += 1
        progress()
    return count
