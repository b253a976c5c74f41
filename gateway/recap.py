"""The periodic recap regional offices send upward: complaint counts per channel, source, category and status.

``build`` counts in the store; ``to_csv`` and ``to_xlsx`` write it out. Names
for codes come from the caller (``name_of``), so the same recap can be
labelled in Bahasa Indonesia on the web and left as codes elsewhere.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import func, select
from sqlmodel import col

from gateway.recap_agencies import HEADINGS as AGENCY_HEADINGS
from gateway.recap_agencies import AgencyFigures
from sinks.store.db import Store
from sinks.store.models import Complaint

# Dimension code -> the column it counts by, and its heading in the files. "region" is worked out from
# region_code: kecamatan inside the home region, kabupaten/kota elsewhere (``region_unit``).
DIMENSIONS: dict[str, str] = {
    "channel": "Kanal",
    "source": "Sumber",
    "category": "Kategori",
    "kind": "Jenis",
    "region": "Wilayah",
    "status": "Status",
}
HEADINGS = ("Dimensi", "Kode", "Nama", "Jumlah")

NameOf = Callable[[str, str | None], str]


def codes_only(dimension: str, code: str | None) -> str:
    return code or "-"


@dataclass(frozen=True)
class Recap:
    """Counts of complaints received in [start, end); ``counts[dimension]`` is (code, count), largest first."""

    start: datetime
    end: datetime
    total: int
    counts: dict[str, list[tuple[str | None, int]]]
    # Names of the region codes in counts["region"] (Kemendagri names), for the page and the files.
    region_names: dict[str, str] = field(default_factory=dict)


def region_unit(code: str, home_region: str | None) -> str:
    """What a region is counted as: its kecamatan inside the home region, its kabupaten/kota elsewhere."""
    parts = code.split(".")
    home_depth = len(home_region.split(".")) if home_region else 0
    if home_region and 0 < home_depth <= 2 and (code == home_region or code.startswith(home_region + ".")):
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def build(
    store: Store,
    start: datetime,
    end: datetime,
    home_region: str | None = None,
    region_name: Callable[[str], str | None] = lambda code: None,
) -> Recap:
    period = (col(Complaint.received_at) >= start, col(Complaint.received_at) < end)
    counts: dict[str, list[tuple[str | None, int]]] = {}
    with store.read() as session:
        total = session.execute(select(func.count()).select_from(Complaint).where(*period)).scalar_one()
        for dimension in DIMENSIONS:
            if dimension == "region":
                continue
            column = getattr(Complaint, dimension)
            rows = session.execute(select(column, func.count()).where(*period).group_by(column)).all()
            # Largest first; ties by code so the file is the same every time.
            counts[dimension] = sorted(((code, int(n)) for code, n in rows), key=lambda r: (-r[1], r[0] or ""))
        by_code = session.execute(
            select(col(Complaint.region_code), func.count()).where(*period).group_by(col(Complaint.region_code))
        ).all()
        # Names from the paths the records carry (no region index needed in this process).
        stored: dict[str, str] = {}
        paths = session.execute(
            select(col(Complaint.region_path)).where(*period, col(Complaint.region_code).is_not(None)).limit(5000)
        ).scalars()
        for path in paths:
            for step in path or []:
                stored.setdefault(step["code"], step["name"])
    units: dict[str | None, int] = {}
    for code, n in by_code:
        unit = region_unit(code, home_region) if code else None
        units[unit] = units.get(unit, 0) + int(n)
    counts["region"] = sorted(units.items(), key=lambda r: (-r[1], r[0] or ""))
    names = {code: stored.get(code) or region_name(code) or code for code in units if code}
    return Recap(start=start, end=end, total=int(total), counts=counts, region_names=names)


def rows(recap: Recap, name_of: NameOf = codes_only) -> list[tuple[str, str, str, int]]:
    """The recap as (dimension heading, code, name, count) lines, a total line first."""
    lines: list[tuple[str, str, str, int]] = [("Total", "", "Semua laporan", recap.total)]
    for dimension, heading in DIMENSIONS.items():
        for code, count in recap.counts[dimension]:
            name = (
                recap.region_names.get(code or "", code or "-") if dimension == "region" else name_of(dimension, code)
            )
            lines.append((heading, code or "", name, count))
    return lines


def to_csv(recap: Recap, period_text: str, name_of: NameOf = codes_only, agencies: Sequence[AgencyFigures] = ()) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Periode", period_text, "", ""])
    writer.writerow(HEADINGS)
    writer.writerows(rows(recap, name_of))
    if agencies:  # the per-agency figures follow, under their own heading line
        writer.writerow([])
        writer.writerow(AGENCY_HEADINGS)
        writer.writerows(["" if cell is None else cell for cell in row.cells()] for row in agencies)
    return out.getvalue()


def to_xlsx(
    recap: Recap, period_text: str, name_of: NameOf = codes_only, agencies: Sequence[AgencyFigures] = ()
) -> bytes:
    """One sheet with every line, then one sheet per dimension (easy to chart in a spreadsheet)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Rekap"
    sheet.append(["Periode", period_text])
    sheet.append(list(HEADINGS))
    for line in rows(recap, name_of):
        sheet.append(list(line))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    sheet.column_dimensions["A"].width = 12
    sheet.column_dimensions["C"].width = 40
    for dimension, heading in DIMENSIONS.items():
        part = book.create_sheet(heading)
        part.append(["Kode", "Nama", "Jumlah"])
        for code, count in recap.counts[dimension]:
            name = (
                recap.region_names.get(code or "", code or "-") if dimension == "region" else name_of(dimension, code)
            )
            part.append([code or "", name, count])
        part.column_dimensions["B"].width = 40
    if agencies:
        per_agency = book.create_sheet("Instansi")
        per_agency.append(list(AGENCY_HEADINGS))
        for row in agencies:
            per_agency.append(row.cells())
        per_agency.column_dimensions["B"].width = 40
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
