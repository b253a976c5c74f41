"""CSV import: a recap sheet of reports collected elsewhere (a district office, an event, a hotline log).

Each good row becomes its own inbox row (channel ``manual``, provider
``csv``) whose raw payload is the row as a manual-entry body, so replay and
provenance work as for every channel. The row's ``external_id`` is a hash of
that normalized body: uploading the same file again — or a later recap that
repeats earlier rows — makes no duplicates. The edge is the web page
``/impor`` and ``lapor-gateway import-csv``; there is no provider to verify.

This module reuses ``channels.manual``'s body model on purpose: a CSV row *is*
a manual entry, typed by staff, and must validate exactly like one.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from channels import manual
from channels.base import Accept, Accepted, ChannelAdapter, ChannelSettings, InboxItem
from normalizer.errors import PayloadError
from normalizer.types import ChannelMessage

PROVIDER = "csv"
CHANNEL = "manual"
MAX_ROWS = 5000
# Rows handed to the inbox at once: they share a group commit instead of one fsync each.
CHUNK = 200


class Settings(ChannelSettings):
    enabled: bool = True


# Display words (Bahasa Indonesia) for the manual-entry codes; a CSV cell may hold either.
SOURCES: dict[str, str] = {
    "phone": "Telepon",
    "walk_in": "Walk-in",
    "radio": "Radio",
    "instagram": "Instagram",
    "facebook": "Facebook",
    "x": "X",
    "whatsapp": "WhatsApp",
    "email": "E-mail",
    "letter": "Surat",
    "other": "Lainnya",
}
ANONYMITY: dict[str, str] = {"public": "Publik", "confidential": "Rahasia", "anonymous": "Anonim"}


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    meaning: str
    example: str


COLUMNS: tuple[Column, ...] = (
    Column("isi", True, "Isi laporan", "Lampu jalan mati sejak seminggu"),
    Column("judul", False, "Judul singkat", "PJU mati"),
    Column(
        "sumber", False, "Sumber: " + ", ".join(s.lower() for s in SOURCES.values()) + " (kosong: lainnya)", "telepon"
    ),
    Column("nama", False, "Nama pelapor", "Budi Santoso"),
    Column("telepon", False, "Nomor telepon pelapor", "081234567890"),
    Column("email", False, "E-mail pelapor", "budi@example.org"),
    Column("kerahasiaan", False, "publik, rahasia atau anonim (kosong: publik)", "publik"),
    Column("kategori", False, "Kode kategori dari daftar kategori", "pju"),
    Column("lokasi", False, "Lokasi (teks)", "Jl. Sudirman depan SDN 3"),
    Column("lat", False, "Lintang, mis. -6.595", "-6.595"),
    Column("lon", False, "Bujur, mis. 106.816", "106.816"),
)
_KNOWN = {column.name for column in COLUMNS}
_IDENTITY = ("nama", "telepon", "email")


@dataclass(frozen=True)
class Row:
    """One data row: its line number in the file, and either a manual-entry body or what is wrong with it."""

    number: int
    values: Mapping[str, str]
    errors: tuple[str, ...] = ()
    raw: bytes | None = None
    external_id: str | None = None
    duplicate_of: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.duplicate_of is None


@dataclass(frozen=True)
class CsvFile:
    sha256: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def good(self) -> list[Row]:
        return [row for row in self.rows if row.ok]

    @property
    def bad(self) -> list[Row]:
        return [row for row in self.rows if row.errors]


@dataclass
class ImportSummary:
    new: int = 0
    duplicate: int = 0
    skipped: int = 0


def _decode(data: bytes) -> str:
    # Excel saves either UTF-8 (with a BOM) or the Windows code page; both are common in regional offices.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise PayloadError("berkas bukan teks CSV (UTF-8 atau Windows-1252)") from None


def _lookup(value: str, words: Mapping[str, str], default: str) -> str | None:
    """A code or its Indonesian word, any case; an empty cell means ``default``; None when unknown."""
    text = value.strip().lower()
    if not text:
        return default
    for code, word in words.items():
        if text in (code, word.lower()):
            return code
    return None


def _number(value: str) -> float | str | None:
    text = value.strip().replace(",", ".")  # Indonesian spreadsheets write decimal commas
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return value


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{8,20}$")


def _body(values: Mapping[str, str], categories: Collection[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The manual-entry body for a row or form, with what is wrong per column (Indonesian)."""
    errors: dict[str, str] = {}
    if not values.get("isi", "").strip():
        errors["isi"] = "wajib diisi"
    source = _lookup(values.get("sumber", ""), SOURCES, "other")
    if source is None:
        errors["sumber"] = f"{values['sumber'].strip()!r} tidak dikenal"
    anonymity = _lookup(values.get("kerahasiaan", ""), ANONYMITY, "public")
    if anonymity is None:
        errors["kerahasiaan"] = f"{values['kerahasiaan'].strip()!r} tidak dikenal (publik, rahasia, anonim)"
    category = values.get("kategori", "").strip().lower() or None
    if category is not None and category not in categories:
        errors["kategori"] = f"{category!r} tidak ada dalam daftar kategori"
    # An anonymous report keeps no identity even in its raw inbox payload: nobody can read it back later.
    identity = {} if anonymity == "anonymous" else {key: values.get(key, "").strip() or None for key in _IDENTITY}
    if identity.get("email") and not _EMAIL.match(identity["email"] or ""):
        errors["email"] = "bukan alamat e-mail"
    if identity.get("telepon") and not _PHONE.match(identity["telepon"] or ""):
        errors["telepon"] = "bukan nomor telepon"
    location = {
        "text": values.get("lokasi", "").strip() or None,
        "lat": _number(values.get("lat", "")),
        "lon": _number(values.get("lon", "")),
    }
    if (location["lat"] is None) != (location["lon"] is None):
        errors["lat" if location["lat"] is None else "lon"] = "isi lintang dan bujur bersama-sama"
    body: dict[str, Any] = {
        "body": values.get("isi", ""),
        "subject": values.get("judul", "").strip() or None,
        "source": source,
        "category": category,
        "reporter": {
            "name": identity.get("nama"),
            "phone": identity.get("telepon"),
            "email": identity.get("email"),
            "anonymity": anonymity,
        },
        "location": location if any(v is not None for v in location.values()) else None,
    }
    return body, errors


_FIELD_COLUMNS = {
    "body": "isi",
    "subject": "judul",
    "source": "sumber",
    "category": "kategori",
    "name": "nama",
    "phone": "telepon",
    "email": "email",
    "anonymity": "kerahasiaan",
    "text": "lokasi",
    "lat": "lat",
    "lon": "lon",
}


def check_values(values: Mapping[str, str], categories: Collection[str]) -> tuple[bytes | None, dict[str, str]]:
    """A row (or the web form, which uses the same names) as a manual-entry body, or its errors per column.

    The body is the entry's canonical JSON: the same report always gives the same bytes.
    """
    body, errors = _body(values, categories)
    if errors:
        return None, errors
    try:
        entry = manual.ManualEntry.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            column = _FIELD_COLUMNS.get(str(error["loc"][-1]), ".".join(map(str, error["loc"])))
            errors.setdefault(column, _message(error))
        return None, errors
    return entry.model_dump_json(exclude_none=True).encode(), {}


def _row(number: int, values: Mapping[str, str], categories: Collection[str]) -> Row:
    raw, errors = check_values(values, categories)
    if raw is None:
        return Row(number, values, tuple(f"{column}: {message}" for column, message in errors.items()))
    return Row(number, values, raw=raw, external_id=external_id(raw, {}))


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in ("missing", "string_too_short", "value_error") and error["loc"][-1] == "body":
        return "wajib diisi"
    if kind == "float_parsing":
        return "harus angka"
    if kind in ("greater_than_equal", "less_than_equal"):
        return "di luar rentang"
    if kind == "string_too_long":
        return "terlalu panjang"
    return str(error["msg"])


def read_csv(data: bytes, categories: Collection[str]) -> CsvFile:
    """Check every row of a CSV file; raises ``PayloadError`` (in Indonesian) when the file itself is unusable."""
    text = _decode(data)
    first_line = text.split("\n", 1)[0]
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise PayloadError("berkas kosong: baris pertama harus berisi nama kolom")
    columns = tuple(name.strip().lower() for name in header)
    unknown = [name for name in columns if name and name not in _KNOWN]
    if unknown:
        raise PayloadError(f"kolom tidak dikenal: {', '.join(unknown)} (kolom yang dikenal: {', '.join(_KNOWN)})")
    if "isi" not in columns:
        raise PayloadError("kolom isi wajib ada")
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for cells in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise PayloadError(f"terlalu banyak baris: paling banyak {MAX_ROWS} per berkas")
        values = {name: cell for name, cell in zip(columns, cells, strict=False) if name}
        row = _row(number, values, categories)
        if row.external_id is not None:
            earlier = seen.setdefault(row.external_id, number)
            if earlier != number:
                row = replace(row, duplicate_of=earlier)
        rows.append(row)
    return CsvFile(sha256=hashlib.sha256(data).hexdigest(), columns=columns, rows=tuple(rows))


def inbox_item(row: Row, entered_by: str, filename: str) -> InboxItem:
    assert row.raw is not None and row.external_id is not None
    return InboxItem(
        channel=CHANNEL,
        provider=PROVIDER,
        external_id=row.external_id,
        raw=row.raw,
        headers={"content-type": "application/json"},
        meta={"entered_by": entered_by, "file": filename, "row": row.number},
    )


async def submit(
    file: CsvFile,
    accept: Accept,
    entered_by: str,
    filename: str,
    on_row: Callable[[Row, Accepted | None], None] = lambda row, accepted: None,
) -> ImportSummary:
    """Hand every good row to the inbox; rows already there (an earlier upload) count as duplicates."""
    summary = ImportSummary()
    for row in file.rows:
        if not row.ok:
            summary.skipped += 1
            on_row(row, None)
    good = file.good
    for start in range(0, len(good), CHUNK):
        chunk: Sequence[Row] = good[start : start + CHUNK]
        results = await asyncio.gather(*(accept(inbox_item(row, entered_by, filename)) for row in chunk))
        for row, accepted in zip(chunk, results, strict=True):
            if accepted.duplicate:
                summary.duplicate += 1
            else:
                summary.new += 1
            on_row(row, accepted)
    return summary


def sample_csv() -> str:
    """The downloadable example: the header and two rows, one of them anonymous."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.name for column in COLUMNS])
    writer.writerow([column.example for column in COLUMNS])
    writer.writerow(["Sampah menumpuk di pasar", "", "walk-in", "", "", "", "anonim", "sampah", "Pasar Anyar", "", ""])
    return out.getvalue()


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    # The stored payload is a manual-entry body; only the provider differs.
    return [replace(message, provider=PROVIDER) for message in manual.parse(raw, meta)]


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    return "row-" + hashlib.sha256(raw).hexdigest()


ADAPTER = ChannelAdapter(name="csv", provider=PROVIDER, settings=Settings, parse=parse, external_id=external_id)
