"""Working days of a government office: weekends, national holidays and cuti bersama (from lokal-id) are off."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from gateway import workdays

WIB = ZoneInfo("Asia/Jakarta")


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (date(2026, 11, 20), 1, date(2026, 11, 23)),  # Friday + 1: over the weekend to Monday
        (date(2026, 8, 14), 1, date(2026, 8, 18)),  # Friday + 1: weekend, then Monday 17 Aug (Proklamasi)
        (date(2026, 12, 23), 3, date(2026, 12, 30)),  # 24 Dec cuti bersama, 25 Dec Christmas, weekend
        (date(2026, 3, 17), 1, date(2026, 3, 25)),  # Nyepi and Idulfitri: 18-24 March are all off
        (date(2026, 11, 16), 5, date(2026, 11, 23)),
    ],
)
def test_adding_working_days_skips_weekends_holidays_and_joint_leave(start: date, days: int, due: date) -> None:
    assert workdays.add_working_days(start, days) == due


def test_a_step_is_due_at_the_end_of_its_last_working_day_in_local_time() -> None:
    # Friday 14 Aug 2026, 16:00 WIB: one working day -> Tuesday 18 Aug, due at midnight WIB (17:00 UTC).
    received = datetime(2026, 8, 14, 9, 0, tzinfo=UTC)
    assert workdays.due_after(received, 1, WIB) == datetime(2026, 8, 18, 17, 0, tzinfo=UTC)
    # 23:30 WIB Friday is still Friday in Jakarta although it is 16:30 UTC.
    assert workdays.due_after(datetime(2026, 11, 20, 16, 30, tzinfo=UTC), 1, WIB).date() == date(2026, 11, 23)


def test_working_days_between_count_what_lies_after_the_first_day() -> None:
    friday = datetime(2026, 8, 14, 3, 0, tzinfo=UTC)
    assert workdays.working_days_between(friday, friday, WIB) == 0
    assert workdays.working_days_between(friday, datetime(2026, 8, 18, 3, 0, tzinfo=UTC), WIB) == 1


def test_a_year_without_holiday_data_counts_only_weekends_and_says_so() -> None:
    with capture_logs() as logs:
        assert workdays.add_working_days(date(2031, 1, 3), 1) == date(2031, 1, 6)
    assert any(entry["event"] == workdays.WORKDAYS_NO_HOLIDAY_DATA for entry in logs)
