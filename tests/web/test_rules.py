"""The small rules behind the pages, as tables: CSV rows, the silence warning, masking, WIB times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from channels import csv_import
from gateway.web.admin import masked
from gateway.web.channel_health import is_silent
from gateway.web.render import local_time
from normalizer.errors import PayloadError

CATEGORIES = ("pju", "sampah", "banjir")
HEADER = "isi,judul,sumber,nama,telepon,email,kerahasiaan,kategori,lokasi,lat,lon\r\n"


@pytest.mark.parametrize(
    ("line", "errors"),
    [
        ("Lampu mati,,telepon,Budi,0812 3456 7890,budi@example.org,publik,pju,,,", ()),
        ("Lampu mati,,TELEPON,,,,RAHASIA,PJU,,,", ()),
        ("Lampu mati,,phone,,,,confidential,,,,", ()),
        (",,telepon,,,,,,,,", ("isi: wajib diisi",)),
        ("Lampu mati,,merpati,,,,,,,,", ("sumber: 'merpati' tidak dikenal",)),
        ("Lampu mati,,,,,,terbuka,,,,", ("kerahasiaan: 'terbuka' tidak dikenal (publik, rahasia, anonim)",)),
        ("Lampu mati,,,,,,,ufo,,,", ("kategori: 'ufo' tidak ada dalam daftar kategori",)),
        ("Lampu mati,,,,,budi-at-example,,,,,", ("email: bukan alamat e-mail",)),
        ("Lampu mati,,,,12ab,,,,,,", ("telepon: bukan nomor telepon",)),
        ("Lampu mati,,,,,,,,,-6.5,", ("lon: isi lintang dan bujur bersama-sama",)),
        ("Lampu mati,,,,,,,,,abc,106.8", ("lat: harus angka",)),
        ("Lampu mati,,,,,,,,,-95,106.8", ("lat: di luar rentang",)),
        ("Lampu mati," + "j" * 501 + ",,,,,,,,,", ("judul: terlalu panjang",)),
    ],
)
def test_each_row_is_checked_like_a_manual_entry(line: str, errors: tuple[str, ...]) -> None:
    [row] = csv_import.read_csv((HEADER + line + "\r\n").encode(), CATEGORIES).rows
    assert row.errors == errors
    assert (row.raw is not None) == (not errors)


def test_excel_style_files_with_semicolons_decimal_commas_and_windows_encoding_are_read() -> None:
    data = "isi;sumber;lokasi;lat;lon\r\nJalan rusak di Cibinong;surat;Cibinong;-6,48;106,85\r\n".encode("cp1252")
    [row] = csv_import.read_csv(data, CATEGORIES).rows
    assert row.ok
    assert json.loads(row.raw or b"")["location"] == {"text": "Cibinong", "lat": -6.48, "lon": 106.85}
    assert json.loads(row.raw or b"")["source"] == "letter"


def test_an_anonymous_row_keeps_no_identity_even_in_its_raw_payload() -> None:
    line = "Pungli di loket,,walk-in,Budi,081234567890,budi@example.org,anonim,,,,\r\n"
    [row] = csv_import.read_csv((HEADER + line).encode(), CATEGORIES).rows
    assert row.raw is not None
    assert json.loads(row.raw)["reporter"] == {"anonymity": "anonymous"}
    assert b"Budi" not in row.raw and b"0812" not in row.raw


def test_the_same_row_twice_is_one_report_and_blank_lines_are_skipped() -> None:
    line = "Sampah menumpuk,,radio,,,,,sampah,,,\r\n"
    rows = csv_import.read_csv((HEADER + line + ",,,,,,,,,,\r\n" + line).encode(), CATEGORIES).rows
    assert [(r.number, r.duplicate_of, r.ok) for r in rows] == [(2, None, True), (4, 2, False)]
    assert rows[0].external_id == rows[1].external_id == csv_import.external_id(rows[0].raw or b"", {})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "berkas kosong"),
        (b"isi,warna\r\nx,merah\r\n", "kolom tidak dikenal: warna"),
        (b"judul\r\nx\r\n", "kolom isi wajib ada"),
        (b"\x81\x8d\x8f\x90\x9d", "bukan teks CSV"),
    ],
)
def test_an_unusable_file_is_refused_whole(data: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        csv_import.read_csv(data, CATEGORIES)


def test_the_sample_file_imports_cleanly() -> None:
    parsed = csv_import.read_csv(csv_import.sample_csv().encode(), ["pju", "sampah"])
    assert len(parsed.good) == 2 and not parsed.bad


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("baseline_count", "last_message_at", "silent"),
    [
        (168 * 5, NOW - 2 * HOUR, True),  # five an hour all week, nothing for two hours
        (168 * 5, NOW - HOUR / 2, False),  # still flowing
        (100, NOW - 5 * HOUR, False),  # a weekly import: less than one a window is normal
        (0, None, False),  # a channel nobody uses never warns
        (168 * 5, None, True),  # used to flow, nothing left in the window at all
    ],
)
def test_silence_is_judged_against_the_channels_usual_week(
    baseline_count: int, last_message_at: datetime | None, silent: bool
) -> None:
    assert is_silent(baseline_count, last_message_at, HOUR, NOW) is silent


def test_anonymous_identities_are_masked_however_deep() -> None:
    view = {"results": [{"would_store": {"reporter": {"name": "Budi", "phone": None, "anonymity": "anonymous"}}}]}
    assert masked(view)["results"][0]["would_store"]["reporter"] == {
        "name": "•••",
        "phone": None,
        "anonymity": "anonymous",
    }
    public = {"reporter": {"name": "Budi", "anonymity": "public"}}
    assert masked(public) == public


def test_times_are_shown_in_the_configured_zone_with_indonesian_months() -> None:
    assert local_time(NOW, ZoneInfo("Asia/Jakarta")) == "25 Nov 2026 19:00 WIB"
    assert local_time("2026-08-16T20:30:00Z", ZoneInfo("Asia/Jayapura")) == "17 Agu 2026 05:30 WIT"
    assert local_time(NOW, ZoneInfo("Asia/Makassar"), with_time=False) == "25 Nov 2026"
    assert local_time(None, ZoneInfo("Asia/Jakarta")) == "—"
