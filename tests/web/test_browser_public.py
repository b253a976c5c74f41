"""The citizens' pages in a real browser (Debian's Chromium driven by playwright), on SQLite.

A phone-sized window, no sign-in: report with a photo, read the tracking id, follow the status page;
the same with JavaScript off; the honeypot, a too-fast form and a flood refused; a confidential
report's status page without identity. Screenshots go to ``tests/artifacts/public-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from gateway import lifecycle
from gateway.lifecycle import Actor, Change
from sinks.store.db import Store, open_store, upgrade
from tests.conftest import build_config
from tests.web.support import ARTIFACTS, Site, complaints, count_complaints, live_site, quiet_channels
from tests.web.test_browser import browser  # the module-scoped Chromium
from tests.web.test_public import PHOTO

__all__ = ["browser"]

PHONE: ViewportSize = {"width": 390, "height": 844}
TRACKING_ID = re.compile(r"^LPR-[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{6}$")
MakeSite = Callable[..., AbstractContextManager[Site]]


AGENCIES = {"dpupr": {"name": "Dinas PUPR Kota Bogor", "categories": ["jalan"]}}


@pytest.fixture
def public_site(tmp_path: Path) -> Iterator[MakeSite]:
    url = f"sqlite:///{tmp_path}/lapor.db"
    store: Store = open_store(url)
    upgrade(store)

    @contextmanager
    def start(**web: Any) -> Iterator[Site]:
        channels = {**quiet_channels(), "web": {"enabled": True}}
        config = build_config(
            url, tmp_path / "data", channels=channels, web={"min_fill_seconds": 0, **web}, agencies=AGENCIES
        )
        with live_site(config, store) as running:
            yield running

    try:
        yield start
    finally:
        store.dispose()


@contextmanager
def phone(browser: Browser, site: Site, **options: Any) -> Iterator[Page]:
    context: BrowserContext = browser.new_context(base_url=site.url, viewport=PHONE, locale="id-ID", **options)
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"public-{name}.png"), full_page=True)


def fill_report(page: Page, tmp_path: Path, anonymity: str = "Publik", photo: bool = True) -> None:
    page.goto("/lapor")
    page.get_by_label("Isi laporan").fill("Jalan berlubang besar di Jl. Merdeka depan SDN 2, dua motor sudah jatuh")
    page.get_by_label("Judul (boleh dikosongkan)").fill("Jalan berlubang")
    page.get_by_label("Lokasi", exact=True).fill("Jl. Merdeka, Kota Bogor")
    if photo:
        path = tmp_path / "lubang.jpg"
        path.write_bytes(PHOTO)
        page.get_by_label("Foto atau dokumen (opsional)").set_input_files(str(path))
    page.get_by_label("Nama", exact=True).fill("Budi Santoso")
    page.get_by_label("Nomor telepon").fill("0812 3456 7890")
    page.get_by_label(anonymity, exact=True).check()
    page.get_by_label(re.compile("^Saya menyatakan laporan ini benar")).check()


def test_citizen_reports_from_a_phone_with_a_photo_and_follows_the_status_page(
    browser: Browser, public_site: MakeSite, tmp_path: Path
) -> None:
    with (
        public_site() as site,
        phone(
            browser, site, geolocation={"latitude": -6.595, "longitude": 106.7972}, permissions=["geolocation"]
        ) as page,
    ):
        fill_report(page, tmp_path)
        page.get_by_role("button", name="Pakai lokasi saya").click()
        expect(page.locator("#lat")).to_have_value("-6.595000")
        expect(page.locator("#lon")).to_have_value("106.797200")
        shot(page, "01-lapor-ponsel")
        page.get_by_role("button", name="Kirim laporan").click()
        number = page.locator("#nomor-laporan")
        expect(number).to_have_text(TRACKING_ID)
        tracking_id = number.inner_text()
        shot(page, "02-terkirim")
        page.get_by_role("link", name="Lihat status laporan").click()
        expect(page).to_have_url(re.compile(f"/cek/{tracking_id}$"))
        expect(page.locator("h1")).to_contain_text(tracking_id)
        expect(page.locator("#status")).to_contain_text("Diterima")
        expect(page.locator("#ringkasan")).to_contain_text("Jalan berlubang")
        expect(page.locator("body")).not_to_contain_text("Budi")
        shot(page, "03-status")
        (complaint,) = complaints(site.store)
    assert complaint.tracking_id == tracking_id
    assert [a["content_type"] for a in complaint.attachments] == ["image/jpeg"]
    assert (complaint.lat, complaint.lon) == (-6.595, 106.7972)


def test_keyboard_order_follows_the_form_and_skips_the_honeypot(
    browser: Browser, public_site: MakeSite, tmp_path: Path
) -> None:
    with public_site() as site, phone(browser, site) as page:
        page.goto("/lapor")
        page.locator("#isi").focus()
        order = []
        for _ in range(14):
            order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
            page.keyboard.press("Tab")
    assert order[:6] == ["isi", "judul", "lokasi", "lat", "lon", "pakai-lokasi"]
    assert order[6:10] == ["lampiran", "nama", "telepon", "email"]
    assert order[10].startswith("kerahasiaan-")
    assert order[11:13] == ["persetujuan", "Kirim laporan"]
    assert "situs" not in order


def test_the_form_works_with_javascript_off(browser: Browser, public_site: MakeSite, tmp_path: Path) -> None:
    with public_site() as site, phone(browser, site, java_script_enabled=False) as page:
        fill_report(page, tmp_path, anonymity="Anonim")
        expect(page.get_by_role("button", name="Pakai lokasi saya")).to_be_hidden()
        page.get_by_label("Lintang (opsional)").fill("-6.6")
        page.get_by_label("Bujur (opsional)").fill("106.8")
        page.get_by_role("button", name="Kirim laporan").click()
        expect(page.locator("#nomor-laporan")).to_have_text(TRACKING_ID)
        tracking_id = page.locator("#nomor-laporan").inner_text()
        page.goto("/cek")
        page.get_by_label("Nomor laporan").fill(tracking_id.lower())  # typed the way people type it
        page.get_by_role("button", name="Cek status").click()
        expect(page.locator("#status")).to_contain_text("Diterima")
        shot(page, "04-tanpa-javascript")
        (complaint,) = complaints(site.store)
    assert (complaint.anonymity, complaint.reporter_name, complaint.lat) == ("anonymous", None, -6.6)


def test_a_filled_honeypot_is_refused_and_stores_nothing(
    browser: Browser, public_site: MakeSite, tmp_path: Path
) -> None:
    with public_site() as site, phone(browser, site) as page:
        fill_report(page, tmp_path)
        page.locator("#situs").evaluate("field => { field.value = 'http://pinjol.example' }")  # what a bot does
        page.get_by_role("button", name="Kirim laporan").click()
        expect(page.get_by_role("alert")).to_contain_text("Formulir tidak dapat diproses")
        shot(page, "05-honeypot")
        assert count_complaints(site.store) == 0


def test_a_form_sent_faster_than_a_person_types_is_refused_with_what_was_typed_kept(
    browser: Browser, public_site: MakeSite, tmp_path: Path
) -> None:
    with public_site(min_fill_seconds=3600) as site, phone(browser, site) as page:
        fill_report(page, tmp_path, photo=False)
        page.get_by_role("button", name="Kirim laporan").click()
        expect(page.get_by_role("alert").first).to_contain_text("terlalu cepat")
        expect(page.get_by_label("Isi laporan")).to_have_value(re.compile("^Jalan berlubang besar"))
        shot(page, "06-terlalu-cepat")
        assert count_complaints(site.store) == 0


def test_a_flood_is_refused_with_a_clear_message(browser: Browser, public_site: MakeSite, tmp_path: Path) -> None:
    with public_site(rate_limit="2/minute") as site, phone(browser, site) as page:
        for _ in range(2):
            fill_report(page, tmp_path, photo=False)
            page.get_by_role("button", name="Kirim laporan").click()
            expect(page.locator("#nomor-laporan")).to_have_text(TRACKING_ID)
        fill_report(page, tmp_path, photo=False)
        with page.expect_response(lambda response: response.request.method == "POST") as posted:
            page.get_by_role("button", name="Kirim laporan").click()
        expect(page.get_by_role("alert")).to_contain_text("Terlalu banyak permintaan")
        shot(page, "07-banjir")
        assert posted.value.status == 429 and int(posted.value.headers["retry-after"]) > 0
        assert count_complaints(site.store) == 2


def test_a_confidential_reports_status_page_shows_no_identity(
    browser: Browser, public_site: MakeSite, tmp_path: Path
) -> None:
    with public_site() as site, phone(browser, site) as page:
        fill_report(page, tmp_path, anonymity="Rahasia")
        page.get_by_role("button", name="Kirim laporan").click()
        page.get_by_role("link", name="Lihat status laporan").click()
        expect(page.locator("#ringkasan")).to_contain_text("Laporan rahasia")
        body = page.locator("body")
        for private in ("Budi", "3456", "Jalan berlubang", "Merdeka"):
            expect(body).not_to_contain_text(private)
        shot(page, "08-status-rahasia")
        (complaint,) = complaints(site.store)
    assert complaint.reporter_name == "Budi Santoso"  # kept, for staff only


def test_the_status_page_shows_the_steps_the_agency_and_its_public_note(
    browser: Browser, public_site: MakeSite, tmp_path: Path
) -> None:
    with public_site() as site, phone(browser, site) as page:
        fill_report(page, tmp_path, photo=False)
        page.get_by_role("button", name="Kirim laporan").click()
        tracking_id = page.locator("#nomor-laporan").inner_text()
        admin = Actor("staff", "rina.admin", admin=True)
        for to, extra in (
            ("verified", {}),
            ("forwarded", {"agency": "dpupr"}),
            ("in_progress", {"public_note": "Tim survei dijadwalkan Kamis, 08.00 WIB."}),
        ):
            lifecycle.transition(site.store, site.config, tracking_id, Change(to=to, **extra), admin)
        page.get_by_role("link", name="Lihat status laporan").click()
        expect(page.locator("#status")).to_contain_text("Ditindaklanjuti")
        expect(page.locator("#instansi")).to_have_text("Dinas PUPR Kota Bogor")
        timeline = page.get_by_role("list", name="Riwayat").get_by_role("listitem")
        expect(timeline).to_have_count(4)
        expect(timeline.nth(3)).to_contain_text("Tim survei dijadwalkan Kamis")
        expect(page.locator("body")).not_to_contain_text("rina.admin")
        shot(page, "09-status-ditindaklanjuti")
