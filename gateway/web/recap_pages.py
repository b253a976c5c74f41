"""**Rekap**: counts for a period of local (WIB) days, on the page and as CSV or XLSX to send upward."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from gateway import recap, recap_agencies
from gateway.web.charts import bar_chart
from gateway.web.complaints import day_start
from gateway.web.labels import Labels
from gateway.web.render import labels_of, local_time, render, zone_of
from gateway.web.security import SignedIn, WebError
from sinks.store.models import utcnow

router = APIRouter(include_in_schema=False)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Day = Annotated[str, Query(max_length=10)]


def _period(request: Request, dari: str, sampai: str) -> tuple[date, date]:
    """The chosen days, inclusive; by default the current month up to today."""
    today = utcnow().astimezone(zone_of(request)).date()
    try:
        start = date.fromisoformat(dari) if dari else today.replace(day=1)
        end = date.fromisoformat(sampai) if sampai else today
    except ValueError:
        raise WebError(400, "Tanggal harus berbentuk TTTT-BB-HH, mis. 2026-11-01.") from None
    if end < start:
        raise WebError(400, "Tanggal akhir sebelum tanggal awal.")
    return start, end


def _agencies(request: Request, start: date, end: date) -> list[recap_agencies.AgencyFigures]:
    zone, gateway = zone_of(request), request.app.state.gateway
    names = {code: agency.name for code, agency in gateway.config.agencies.items()}
    return recap_agencies.build(
        gateway.store, day_start(start, zone), day_start(end + timedelta(days=1), zone), names, zone
    )


def _build(request: Request, start: date, end: date) -> tuple[recap.Recap, str]:
    zone = zone_of(request)
    gateway = request.app.state.gateway
    made = recap.build(
        gateway.store,
        day_start(start, zone),
        day_start(end + timedelta(days=1), zone),
        home_region=gateway.config.normalizer.home_region,
    )
    text = f"{local_time(day_start(start, zone), zone, False)} – {local_time(day_start(end, zone), zone, False)}"
    return made, f"{text} ({day_start(start, zone).tzname()})"


@router.get("/rekap")
def recap_page(request: Request, staff: SignedIn, dari: Day = "", sampai: Day = "") -> Response:
    start, end = _period(request, dari, sampai)
    made, period_text = _build(request, start, end)
    agencies = _agencies(request, start, end)
    context = {
        "recap": made,
        "period_text": period_text,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "dimensions": recap.DIMENSIONS,
        "charts": _charts(made, labels_of(request)),
        "agencies": agencies,
        "agency_charts": _agency_charts(agencies) if agencies else None,
    }
    return render(request, "recap.html", context, staff)


def _charts(made: recap.Recap, labels: Labels) -> dict[str, Markup]:
    """Bar charts of the counts by region and by kind (server-rendered SVG)."""
    by_region = [
        (made.region_names.get(code, code) if code else "tanpa wilayah", n) for code, n in made.counts["region"]
    ]
    by_kind = [(labels("kind", code), n) for code, n in made.counts["kind"]]
    return {
        "region": bar_chart(by_region, "Laporan per wilayah"),
        "kind": bar_chart(by_kind, "Laporan per jenis"),
    }


def _agency_charts(agencies: list[recap_agencies.AgencyFigures]) -> dict[str, Markup]:
    """The completion rate (whole percent) and the overdue count per agency, as bar charts."""
    rates = [(row.name, round(row.completion_rate or 0)) for row in agencies]
    late = [(row.name, row.overdue) for row in agencies]
    return {
        "completion": bar_chart(rates, "Tingkat penyelesaian per instansi (%)"),
        "overdue": bar_chart(late, "Terlambat per instansi", highlight=[name for name, n in late if n]),
    }


def _download(request: Request, dari: str, sampai: str, kind: str) -> Response:
    start, end = _period(request, dari, sampai)
    made, period_text = _build(request, start, end)
    filename = f"rekap-{start.isoformat()}-{end.isoformat()}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    agencies = _agencies(request, start, end)
    if kind == "csv":
        text = recap.to_csv(made, period_text, labels_of(request), agencies)
        body = text.encode("utf-8-sig")  # BOM: Excel reads UTF-8
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    return Response(recap.to_xlsx(made, period_text, labels_of(request), agencies), media_type=XLSX, headers=headers)


@router.get("/rekap.csv")
def recap_csv(request: Request, staff: SignedIn, dari: Day = "", sampai: Day = "") -> Response:
    return _download(request, dari, sampai, "csv")


@router.get("/rekap.xlsx")
def recap_xlsx(request: Request, staff: SignedIn, dari: Day = "", sampai: Day = "") -> Response:
    return _download(request, dari, sampai, "xlsx")
