"""What verifiers see of the normalizer: category, kind, region with its path, urgency, reasons, related ids,
and the recap's counts by region and kind drawn as SVG bars (no script)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.config import Config
from gateway.web.charts import bar_chart
from sinks.store.db import Store
from sinks.store.models import utcnow
from tests.web.support import Site, add_staff, complaints, live_site, post_form, quiet_channels, signed_in, wait_until

URGENT = {"isi": "tlg pohon tumbang menutup jalan di kec. slawi", "sumber": "phone", "kerahasiaan": "public"}
PLAIN = {"isi": "mohon info syarat bikin KTP di kecamatan adiwerna", "sumber": "walk_in", "kerahasiaan": "public"}
OTHER = {"isi": "jukir liar di alun2 kota tegal minta 5rb", "sumber": "phone", "kerahasiaan": "public"}


@pytest.fixture
def site(make_config: Callable[..., Config], store: Store) -> Iterator[Site]:
    add_staff(store)
    config = make_config(channels=quiet_channels(), normalizer={"home_region": "33.28"})
    with live_site(config, store) as running:
        yield running


@pytest.fixture
def agent(site: Site) -> Iterator[httpx.Client]:
    with signed_in(site, "siti") as client:
        yield client


def enter(site: Site, client: httpx.Client, *reports: dict[str, str]) -> list[str]:
    for report in reports:
        post_form(client, "/laporan/baru", "/laporan/baru", report)
    wait_until(lambda: len(complaints(site.store)) == len(reports), "the reports to be stored")
    return [c.tracking_id for c in complaints(site.store)]


def test_list_and_detail_show_what_the_normalizer_read(site: Site, agent: httpx.Client) -> None:
    urgent, plain = enter(site, agent, URGENT, PLAIN)

    listing = agent.get("/pengaduan").text
    assert "Mendesak" in listing  # the urgent one is marked
    assert "Pohon &amp; Taman" in listing and "Permintaan informasi" in listing
    assert "Slawi" in listing and "Jawa Tengah › Kabupaten Tegal › Slawi" in listing

    detail = agent.get(f"/pengaduan/{urgent}").text
    assert '<span class="badge urgent">Mendesak</span>' in detail
    assert "(kecamatan, 33.28.10)" in detail
    assert "Dibaca otomatis" in detail and "<q>pohon</q>" in detail
    assert "<q>kec slawi</q>" in detail  # the words that decided the region
    assert "<script>" not in detail  # only the external app.js

    other = agent.get(f"/pengaduan/{plain}").text
    assert "Permintaan informasi" in other and "Biasa" in other and "Adiwerna" in other


def test_related_reports_are_linked_on_the_detail_page(site: Site, agent: httpx.Client) -> None:
    report = {
        "isi": "Jalan berlubang besar di depan SDN 2 Slawi, kec slawi",
        "sumber": "phone",
        "kerahasiaan": "public",
    }
    again = {**report, "isi": "ada lubang besar di jalan depan SDN 2 slawi kec slawi tolong", "sumber": "radio"}
    first, second = enter(site, agent, report, again)
    page = agent.get(f"/pengaduan/{second}").text
    assert f'<a href="/pengaduan/{first}" class="mono">{first}</a>' in page


def test_recap_counts_by_region_and_kind_with_bar_charts(site: Site, agent: httpx.Client) -> None:
    enter(site, agent, URGENT, PLAIN, OTHER)
    today = utcnow().astimezone(ZoneInfo("Asia/Jakarta")).date().isoformat()
    page = agent.get("/rekap", params={"dari": today, "sampai": today}).text

    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 2
    assert "<title>Laporan per wilayah</title>" in page
    # Kecamatan inside the home region (Kabupaten Tegal), kabupaten/kota outside it.
    assert "Slawi: 1" in page and "Adiwerna: 1" in page and "Kota Tegal: 1" in page
    assert "Pengaduan: 2" in page and "Permintaan informasi: 1" in page
    assert "<script>" not in page
    csv_text = agent.get("/rekap.csv", params={"dari": today, "sampai": today}).content.decode("utf-8-sig")
    assert "Wilayah,33.28.10,Slawi,1" in csv_text and "Jenis,complaint,Pengaduan,2" in csv_text


def test_bar_chart_escapes_labels_and_scales_to_the_largest() -> None:
    svg = str(bar_chart([("<b>Kota</b>", 10), ("Desa", 5)], title="T & U"))
    assert "&lt;b&gt;Kota&lt;/b&gt;" in svg and "<b>" not in svg
    assert "<title>T &amp; U</title>" in svg
    assert 'width="300"' in svg and 'width="150"' in svg  # the largest fills the bar area, half is half
    assert "style=" not in svg and "<script" not in svg
    many = str(bar_chart([(f"r{i}", 1) for i in range(20)], title="x", max_rows=5))
    assert "lainnya (15)" in many
    assert "tidak ada data" in str(bar_chart([], title="kosong"))
