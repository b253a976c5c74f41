"""The recap per agency (OPD): what regions are judged on.

For a period of local days: complaints received (that went to the agency), forwarded to it, resolved by
it, the completion rate (resolved ÷ forwarded), the median working days from receipt to verification and
from forwarding to resolution, and how many of its open complaints are overdue now. Counted from the
lifecycle's events, so a complaint handed back and forwarded elsewhere counts where it really went.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import col

from gateway import lifecycle, workdays
from sinks.store.db import Store
from sinks.store.models import Complaint, ComplaintEvent, utcnow

HEADINGS = (
    "Kode",
    "Instansi",
    "Diterima",
    "Diteruskan",
    "Selesai",
    "Tingkat penyelesaian (%)",
    "Median hari kerja verifikasi",
    "Median hari kerja penyelesaian",
    "Terlambat",
)


@dataclass(frozen=True)
class AgencyFigures:
    code: str
    name: str
    received: int
    forwarded: int
    resolved: int
    median_verify_days: float | None
    median_resolve_days: float | None
    overdue: int

    @property
    def completion_rate(self) -> float | None:
        """Resolved ÷ forwarded, in percent; None when nothing was forwarded."""
        return round(100.0 * self.resolved / self.forwarded, 1) if self.forwarded else None

    def cells(self) -> list[str | int | float | None]:
        return [
            self.code,
            self.name,
            self.received,
            self.forwarded,
            self.resolved,
            self.completion_rate,
            self.median_verify_days,
            self.median_resolve_days,
            self.overdue,
        ]


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _events(store: Store) -> tuple[dict[str, list[ComplaintEvent]], dict[str, datetime], dict[str, int]]:
    """Each complaint's verify/forward/resolve events in order, when complaints were received, overdue counts."""
    steps = (lifecycle.VERIFIED, lifecycle.FORWARDED, lifecycle.RESOLVED)
    history: dict[str, list[ComplaintEvent]] = {}
    with store.read() as session:
        for event in session.execute(
            select(ComplaintEvent)
            .where(col(ComplaintEvent.to_status).in_(steps))
            .order_by(col(ComplaintEvent.at), col(ComplaintEvent.id))
        ).scalars():
            history.setdefault(event.tracking_id, []).append(event)
        received = {
            str(t): at
            for t, at in session.execute(select(col(Complaint.tracking_id), col(Complaint.received_at))).all()
            if t in history
        }
        late = session.execute(
            select(col(Complaint.agency), func.count())
            .where(col(Complaint.due_at) < utcnow(), col(Complaint.status).not_in(lifecycle.FINAL))
            .group_by(col(Complaint.agency))
        ).all()
    return history, received, {str(code): int(n) for code, n in late if code}


def build(
    store: Store, start: datetime, end: datetime, agencies: Mapping[str, str], zone: ZoneInfo
) -> list[AgencyFigures]:
    """One row per configured agency (``agencies``: code -> name), in the config's order."""
    history, received, overdue = _events(store)
    rows: list[AgencyFigures] = []
    for code, name in agencies.items():
        came = forwarded = done = 0
        verify_days: list[int] = []
        resolve_days: list[int] = []
        for tracking_id, steps in history.items():
            sent = [e for e in steps if e.to_status == lifecycle.FORWARDED and e.agency == code]
            if not sent:
                continue
            if start <= received.get(tracking_id, end) < end:
                came += 1
            sent_now = [e for e in sent if start <= e.at < end]
            if sent_now:
                forwarded += 1
                verified = next((e for e in steps if e.to_status == lifecycle.VERIFIED), None)
                if verified is not None and tracking_id in received:
                    verify_days.append(workdays.working_days_between(received[tracking_id], verified.at, zone))
            answered = [
                e for e in steps if e.to_status == lifecycle.RESOLVED and e.agency == code and start <= e.at < end
            ]
            if answered:
                done += 1
                before = [e for e in sent if e.at <= answered[-1].at]
                if before:
                    resolve_days.append(workdays.working_days_between(before[-1].at, answered[-1].at, zone))
        rows.append(
            AgencyFigures(
                code, name, came, forwarded, done, _median(verify_days), _median(resolve_days), overdue.get(code, 0)
            )
        )
    return rows
