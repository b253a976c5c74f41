"""Working days of an Indonesian government office: no weekends, national holidays or joint leave (cuti bersama).

The holidays come from ``lokal-id`` (the yearly SKB 3 Menteri). For a year it has no decree for yet, only
weekends count as days off, and that is logged once per year so an operator knows to update the package.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import structlog
from lokal import holidays as lokal_holidays

log = structlog.get_logger(__name__)

WORKDAYS_NO_HOLIDAY_DATA = "workdays.no_holiday_data"
_warned: set[int] = set()


@cache
def is_working_day(day: date) -> bool:
    if day.weekday() >= 5:
        return False
    try:
        return lokal_holidays.is_working_day(day, cuti_bersama=True)
    except ValueError:
        if day.year not in _warned:
            _warned.add(day.year)
            log.warning(WORKDAYS_NO_HOLIDAY_DATA, year=day.year)
        return True


def add_working_days(day: date, days: int) -> date:
    """The date ``days`` working days after ``day`` (``day`` itself does not count)."""
    left = days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return day


def due_after(at: datetime, days: int, zone: ZoneInfo) -> datetime:
    """End of the ``days``-th working day after ``at`` (local midnight that follows it), in UTC."""
    return _due_after_day(at.astimezone(zone).date(), days, zone)


@lru_cache(maxsize=256)
def _due_after_day(day: date, days: int, zone: ZoneInfo) -> datetime:
    # One answer per local day: the worker asks it for every complaint it stores, nearly always for today.
    last = add_working_days(day, days)
    return datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)


def working_days_between(start: datetime, end: datetime, zone: ZoneInfo) -> int:
    """Working days after ``start``'s local date up to and including ``end``'s: same day is 0."""
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    count = 0
    while first < last:
        first += timedelta(days=1)
        if is_working_day(first):
            count += 1
    return count
