"""The recap per agency: counts, completion rate, medians in working days, overdue, and the exports."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from gateway import lifecycle, recap, recap_agencies
from gateway.config import Config
from gateway.lifecycle import Actor, Change
from sinks.store.db import Store
from tests.support.complaints import add_complaint

WIB = ZoneInfo("Asia/Jakarta")
ADMIN = Actor("staff", "rina", admin=True)
AGENCIES = {"dpupr": {"name": "Dinas PUPR", "categories": ["jalan"]}, "dlh": {"name": "DLH", "categories": ["sampah"]}}
# Monday 16 Nov 2026, 09:00 WIB (the holiday arithmetic itself is tested in test_lifecycle / test_workdays).
MONDAY = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)
NOVEMBER = (datetime(2026, 10, 31, 17, 0, tzinfo=UTC), datetime(2026, 11, 30, 17, 0, tzinfo=UTC))


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config(agencies=AGENCIES)


def step(store: Store, config: Config, tracking_id: str, to: str, at: datetime, **given: str) -> None:
    lifecycle.transition(store, config, tracking_id, Change(to=to, at=at, **given), ADMIN)


def figures(store: Store, config: Config) -> dict[str, recap_agencies.AgencyFigures]:
    names = {code: agency.name for code, agency in config.agencies.items()}
    return {row.code: row for row in recap_agencies.build(store, *NOVEMBER, names, WIB)}


def test_completion_rate_and_medians_in_working_days(store: Store, config: Config) -> None:
    fast = add_complaint(store, received_at=MONDAY)
    step(store, config, fast, "verified", MONDAY + timedelta(days=1))  # Tue: 1 working day
    step(store, config, fast, "forwarded", MONDAY + timedelta(days=1), agency="dpupr")
    # Forwarded Tue 17, resolved Mon 23 Nov: Wed, Thu, Fri, (weekend), Mon = 4 working days.
    step(store, config, fast, "resolved", MONDAY + timedelta(days=7), public_note="Sudah ditambal.")
    slow = add_complaint(store, received_at=MONDAY)
    step(store, config, slow, "verified", MONDAY + timedelta(days=7))  # Mon 23: Tue to Fri and Mon = 5
    step(store, config, slow, "forwarded", MONDAY + timedelta(days=7), agency="dpupr")  # due end of Mon 30 Nov
    elsewhere = add_complaint(store, received_at=MONDAY, category="sampah")
    step(store, config, elsewhere, "verified", MONDAY)
    step(store, config, elsewhere, "forwarded", MONDAY, agency="dlh")

    rows = figures(store, config)
    pupr = rows["dpupr"]
    assert (pupr.received, pupr.forwarded, pupr.resolved) == (2, 2, 1)
    assert pupr.completion_rate == 50.0
    assert pupr.median_verify_days == 3.0  # median of 1 and 5
    assert pupr.median_resolve_days == 4.0
    assert pupr.overdue == 1  # the slow one, still open after its due date
    dlh = rows["dlh"]
    assert (dlh.forwarded, dlh.resolved, dlh.completion_rate, dlh.overdue) == (1, 0, 0.0, 1)


def test_an_agency_with_nothing_forwarded_has_no_rate(store: Store, config: Config) -> None:
    rows = figures(store, config)
    assert rows["dpupr"].completion_rate is None and rows["dpupr"].median_resolve_days is None


def test_a_misrouted_complaint_counts_where_it_went(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store, received_at=MONDAY)
    step(store, config, tracking_id, "verified", MONDAY)
    step(store, config, tracking_id, "forwarded", MONDAY, agency="dpupr")
    lifecycle.transition(
        store, config, tracking_id, Change(to="verified", at=MONDAY), Actor("agency", "p", agency="dpupr")
    )
    step(store, config, tracking_id, "forwarded", MONDAY + timedelta(hours=1), agency="dlh")
    step(store, config, tracking_id, "resolved", MONDAY + timedelta(days=1), public_note="Diangkut.")
    rows = figures(store, config)
    assert (rows["dpupr"].resolved, rows["dlh"].resolved, rows["dlh"].completion_rate) == (0, 1, 100.0)


def test_the_exports_carry_the_agency_table(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store, received_at=MONDAY)
    step(store, config, tracking_id, "verified", MONDAY)
    step(store, config, tracking_id, "forwarded", MONDAY, agency="dpupr")
    made = recap.build(store, *NOVEMBER)
    rows = list(figures(store, config).values())
    text = recap.to_csv(made, "November 2026", agencies=rows)
    assert "Tingkat penyelesaian (%)" in text
    assert "dpupr,Dinas PUPR,1,1,0,0.0,0.0,,1\r\ndlh,DLH,0,0,0,,,,0" in text
    book = load_workbook(io.BytesIO(recap.to_xlsx(made, "November 2026", agencies=rows)))
    sheet = book["Instansi"]
    assert [cell.value for cell in sheet[2]][:6] == ["dpupr", "Dinas PUPR", 1, 1, 0, 0.0]
