"""Writes of one worker batch, sent to the database as few statements as possible.

On the fast path a batch's complaints, outbox rows and inbox "done" marks are
collected and written with one ``executemany`` each, just before the commit
(or before a read that must see them). On the careful path every write goes
out at once, inside the row's savepoint, so a failing row can be rolled back
alone. Both paths write exactly the same rows.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, Update, bindparam, insert, update
from sqlmodel import Session

from normalizer.tracking import new_tracking_id
from sinks.store import queries
from sinks.store.models import PROCESSING, Complaint, InboxMessage, MediaFetch, OutboxMessage

# Core tables, not ORM entities: a bulk insert of plain dicts needs none of the ORM's bookkeeping.
_COMPLAINTS: Table = Complaint.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_MEDIA: Table = MediaFetch.__table__  # type: ignore[attr-defined]
_INBOX: Table = InboxMessage.__table__  # type: ignore[attr-defined]
# Built once: a statement made afresh for every flush costs its construction and its cache key each time.
_INSERT_COMPLAINTS = insert(_COMPLAINTS)
_INSERT_OUTBOX = insert(_OUTBOX)
_INSERT_MEDIA = insert(_MEDIA)


@functools.cache
def _finish_inbox_statement(columns: tuple[str, ...]) -> Update:
    """Mark a batch's inbox rows (``b_ids``) with values for ``columns``, while they are still ours."""
    return (
        update(_INBOX)
        .where(
            _INBOX.c.id.in_(bindparam("b_ids", expanding=True)),
            _INBOX.c.claim_token == bindparam("b_token"),
            _INBOX.c.status == PROCESSING,
        )
        .values(lease_until=None, claim_token=None, **{name: bindparam(f"b_{name}") for name in columns})
    )


class LeaseLost(Exception):
    """Our lease ran out and another worker took the row: this worker must not finish it."""


def finish(session: Session, row: InboxMessage | OutboxMessage | MediaFetch, **values: Any) -> None:
    """Update a claimed row, but only while it is still ours (same claim token, still processing)."""
    table: Any = type(row)
    result = session.execute(
        update(table)
        .where(table.id == row.id, table.claim_token == row.claim_token, table.status == PROCESSING)
        .values(lease_until=None, claim_token=None, **values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"{table.__tablename__} row {row.id} was taken by another worker")


def finish_many(
    session: Session, model: type[InboxMessage] | type[OutboxMessage], finished: list[FinishedRow]
) -> set[int]:
    """``finish`` for many rows, one executemany per set of columns; the ids whose lease was lost.

    When the counts do not add up (a row taken by another worker), the group is redone row by row
    to learn which; that is the rare path.
    """
    # The Core table: an executemany of plain parameters, none of the ORM's bulk-update bookkeeping.
    table: Table = model.__table__  # type: ignore[union-attr]
    groups: dict[tuple[str, ...], list[FinishedRow]] = defaultdict(list)
    for each in finished:
        groups[tuple(sorted(each.values))].append(each)
    lost: set[int] = set()
    for columns, members in groups.items():
        statement = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.claim_token == bindparam("b_token"),
                table.c.status == PROCESSING,
            )
            .values(lease_until=None, claim_token=None, **{name: bindparam(name) for name in columns})
        )
        parameters = [{"b_id": each.row.id, "b_token": each.row.claim_token, **each.values} for each in members]
        savepoint = session.begin_nested()
        result = session.execute(statement, parameters)
        if result.rowcount == len(members):  # type: ignore[attr-defined]
            savepoint.commit()
            continue
        savepoint.rollback()  # this group again, one by one, to learn which row was taken
        for each in members:
            try:
                with session.begin_nested():
                    finish(session, each.row, **each.values)
            except LeaseLost:
                lost.add(each.row.id or 0)
    return lost


@dataclass(frozen=True)
class FinishedRow:
    row: InboxMessage | OutboxMessage
    values: dict[str, Any]


class BatchWrites:
    def __init__(self, session: Session, careful: bool, draw: queries.DrawId = new_tracking_id) -> None:
        self.session = session
        self.careful = careful
        self.draw = draw
        self._complaints: list[dict[str, Any]] = []
        self._outbox: list[dict[str, Any]] = []
        self._media: list[dict[str, Any]] = []
        # (claim token, values) -> inbox ids to mark with those values
        self._finished: dict[tuple[str, tuple[tuple[str, Any], ...]], list[int]] = defaultdict(list)

    def complaint(self, fields: dict[str, Any]) -> None:
        """Insert a complaint's column values; ``fields["tracking_id"]`` is set here."""
        if self.careful:
            queries.insert_complaint(self.session, fields, self.draw)
            return
        # A tracking-id collision raises IntegrityError at flush; the careful pass then draws again.
        fields["tracking_id"] = self.draw()
        self._complaints.append(fields)

    def pending_complaints(self) -> list[dict[str, Any]]:
        """Complaints collected in this batch and not yet sent (a read of the table would not see them)."""
        return list(self._complaints)

    def outbox(self, values: dict[str, Any]) -> None:
        if self.careful:
            self.session.execute(insert(_OUTBOX), [values])
        else:
            self._outbox.append(values)

    def media(self, values: dict[str, Any]) -> None:
        """A media job for a complaint of this batch (written after it, like its outbox rows)."""
        if self.careful:
            self.session.execute(insert(_MEDIA), [values])
        else:
            self._media.append(values)

    def finish_inbox(self, row: InboxMessage, **values: Any) -> None:
        if self.careful:
            finish(self.session, row, **values)
        else:
            assert row.id is not None and row.claim_token is not None
            self._finished[(row.claim_token, tuple(sorted(values.items())))].append(row.id)

    def flush(self) -> None:
        """Send what was collected; a read that must see this batch's rows calls it first."""
        if self._complaints:
            self.session.execute(_INSERT_COMPLAINTS, self._complaints)
            self._complaints = []
        if self._outbox:
            self.session.execute(_INSERT_OUTBOX, self._outbox)
            self._outbox = []
        if self._media:
            self.session.execute(_INSERT_MEDIA, self._media)
            self._media = []
        for (token, values), ids in self._finished.items():
            statement = _finish_inbox_statement(tuple(name for name, _ in values))
            parameters = {"b_ids": ids, "b_token": token, **{f"b_{name}": value for name, value in values}}
            result = self.session.execute(statement, parameters)
            if result.rowcount != len(ids):  # type: ignore[attr-defined]
                raise LeaseLost(f"{len(ids) - result.rowcount} inbox rows were taken by another worker")  # type: ignore[attr-defined]
        self._finished.clear()
