"""Reading a Meta notification and cutting it down to what one inbox row needs.

A notification may carry many items (messages, statuses, events) from many
people; Meta batches a retry differently from the first delivery. Each item
gets its own inbox row, and a row keeps the notification cut down to its one
item (with the envelope: ``object``, the entry's id and time, the sender's
contact) rather than a copy of everything: it can be parsed and replayed on
its own, and a hundred-message notification is not stored a hundred times.
The digest and size of the whole notification stay in the row's ``meta`` as
provenance. A notification of a single item is kept byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from normalizer.errors import PayloadError

# How deep a notification may nest: Meta's are a handful of levels; 10,000 would exhaust the stack.
MAX_DEPTH = 32


def _depth(value: Any, limit: int) -> int:
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def load_object(raw: bytes, product: str) -> dict[str, Any]:
    """The notification's JSON object; ``PayloadError`` naming what is wrong."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError(f"{product} notification is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError(f"{product} notification is not a JSON object")
    if _depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise PayloadError(f"{product} notification nests deeper than {MAX_DEPTH} levels")
    return data


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def provenance(raw: bytes) -> dict[str, Any]:
    """What a cut-down row keeps of the whole notification."""
    return {"notification_sha256": digest(raw), "notification_bytes": len(raw)}


def cut_down(data: Mapping[str, Any], entry: Mapping[str, Any], key: str, items: list[Any]) -> bytes:
    """The notification with one entry holding only ``items`` under ``key`` (``changes`` or ``messaging``)."""
    kept_entry = {name: value for name, value in entry.items() if name != key}
    kept_entry[key] = items
    envelope = {name: value for name, value in data.items() if name != "entry"}
    envelope["entry"] = [kept_entry]
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def entries(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``entry[]``, the objects only (the model validation has already named a malformed one)."""
    found = data.get("entry")
    return [entry for entry in found if isinstance(entry, dict)] if isinstance(found, list) else []
