"""JSON columns read back exactly as the standard library reads them, on SQLite and PostgreSQL.

The store reads JSON with orjson (a claim reads every row's meta and headers); where orjson would
answer differently (integers past 64 bits become floats, a lone surrogate is refused) the stdlib reads it.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from channels.base import InboxItem
from gateway.inbox import insert_inbox_row
from sinks.store.db import Store
from sinks.store.models import InboxMessage, utcnow

STORED = [
    '{"entered_by": "siti", "idempotency_key": "k-1", "part": 2, "score": 0.1, "ok": true, "none": null}',
    '{"chat_id": 123456789012345678901234567890, "small": -9223372036854775809}',  # past 64 bits
    '{"name": "\\ud83d\\ude00 and a lone \\ud800"}',  # a surrogate pair, and half of one
    '{"nested": {"list": [1, 2.5, "tiga", {"empat": []}]}, "unicode": "Jl. Cempaka \\u00e9"}',
]


@pytest.mark.parametrize("stored", STORED)
def test_a_json_column_reads_back_as_json_loads_reads_it(store: Store, stored: str) -> None:
    with store.write() as session:
        item = InboxItem(channel="manual", provider="callcenter", external_id="json-1", raw=b"{}", meta={})
        inbox_id = insert_inbox_row(session, item, utcnow()).inbox_id
        session.execute(text("UPDATE inbox SET meta = :meta WHERE id = :id"), {"meta": stored, "id": inbox_id})

    with store.read() as session:
        row = session.get(InboxMessage, inbox_id)

    assert row is not None
    expected = json.loads(stored)
    assert row.meta == expected
    assert json.dumps(row.meta) == json.dumps(expected)  # same types too: an int stays an int
