"""The pages in a real browser (Debian's Chromium driven by playwright), on SQLite to keep the suite quick.

Each test saves screenshots under ``tests/artifacts/`` for a reviewer to look at.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from channels import csv_import
from sinks.store.db import Store, open_store, upgrade
from tests.conftest import build_config
from tests.web.support import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    PASSWORD,
    Site,
    add_staff,
    chromium,
    complaints,
    count_complaints,
    failed_row,
    live_site,
    quiet_channels,
    wait_until,
)

OFFICE: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
TRACKING_ID = re.compile(r"^LPR-[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{6}$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Never a browser of playwright's own: the launch names Debian's binary, and downloads are switched off.
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path}/lapor.db"
    store: Store = open_store(url)
    upgrade(store)
    add_staff(store)
    try:
        with live_site(build_config(url, tmp_path / "data", channels=quiet_channels()), store) as running:
            yield running
    finally:
        store.dispose()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(base_url=site.url, viewport=OFFICE, locale="id-ID", accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def menu(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Menu utama").get_by_role("link", name=name).click()


def sign_in_with_keyboard(page: Page, username: str) -> None:
    """Only keys: the name field has focus on arrival, Tab moves to the password, Enter signs in."""
    page.goto("/laporan/baru")
    expect(page).to_have_url(re.compile(r"/login\?next=/laporan/baru$"))
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/laporan/baru$"))


def test_agent_enters_a_phoned_in_report_reads_its_tracking_id_and_finds_it(page: Page, site: Site) -> None:
    page.goto("/login")
    shot(page, "01-login")
    sign_in_with_keyboard(page, "siti")
    expect(page.locator("#isi")).to_be_focused()

    page.get_by_role("button", name="Kirim laporan").click()
    expect(page.locator("#isi:invalid")).to_have_count(1)  # the browser's own required-field check

    page.keyboard.type("Lampu jalan mati sejak seminggu di depan SDN 3")
    page.get_by_label("Judul (ringkas)").fill("PJU mati")
    page.get_by_label("Sumber").select_option(label="Telepon")
    page.get_by_label("Kategori").select_option("pju")
    page.get_by_label("Lokasi").fill("Jl. Sudirman, Kota Bogor")
    page.get_by_label("Nama").fill("Budi Santoso")
    page.get_by_label("Telepon").fill("0812 3456 7890")
    page.get_by_label("E-mail").fill("bukan-email")
    page.get_by_label("Rahasia", exact=True).check()
    shot(page, "02-laporan-baru")
    page.set_viewport_size(PHONE)
    shot(page, "02b-laporan-baru-ponsel")
    page.set_viewport_size(OFFICE)

    # type=email stops a bad address in the browser; skip that to see the server's message beside the field.
    page.locator("form.report").evaluate("form => form.noValidate = true")
    page.get_by_role("button", name="Kirim laporan").click()
    expect(page.locator("#email-error")).to_have_text("bukan alamat e-mail")
    shot(page, "03-laporan-baru-galat")
    page.get_by_label("E-mail").fill("budi@example.org")
    page.get_by_label("E-mail").press("Enter")  # Enter in a field sends the form
    page.wait_for_url(re.compile(r"/laporan/LPR-\w+/terkirim$"))

    tracking = page.locator("#nomor-laporan")
    tracking_id = tracking.inner_text().strip()
    assert TRACKING_ID.match(tracking_id)
    assert float(tracking.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")) >= 36  # large, to read out
    shot(page, "04-nomor-laporan")
    [stored] = complaints(site.store)
    assert stored.tracking_id == tracking_id
    assert stored.anonymity == "confidential" and stored.entered_by == "siti"

    menu(page, "Pengaduan")
    page.get_by_label("Cari (nomor, judul, isi)").fill(tracking_id.lower())
    page.get_by_label("Cari (nomor, judul, isi)").press("Enter")
    row = page.locator("table.list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("PJU mati")
    expect(row).to_contain_text("Rahasia")
    shot(page, "05-pengaduan")
    row.get_by_role("link", name=tracking_id).click()
    expect(page.locator("dl.record")).to_contain_text("Budi Santoso")
    shot(page, "06-detail")


def test_the_report_form_follows_reading_order_with_tab_and_sends_on_enter(page: Page, site: Site) -> None:
    sign_in_with_keyboard(page, "siti")
    page.keyboard.type("Jalan berlubang besar di depan pasar")
    order = ["judul", "sumber", "kategori", "lokasi", "lat", "lon", "nama", "telepon", "email"]
    for field in order:
        page.keyboard.press("Tab")
        expect(page.locator(f"#{field}")).to_be_focused()
        if field == "judul":
            page.keyboard.type("Jalan rusak")
        if field == "kategori":
            page.keyboard.press("ArrowDown")  # the first category, chosen without a mouse
    page.keyboard.press("Tab")
    expect(page.locator("input[name=kerahasiaan][value=public]")).to_be_focused()
    page.keyboard.press("ArrowRight")  # radio buttons move with the arrows: Rahasia
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # Enter in the e-mail field sends the form
    page.wait_for_url(re.compile(r"/terkirim$"))
    [stored] = complaints(site.store)
    assert (stored.subject, stored.source, stored.anonymity) == ("Jalan rusak", "phone", "confidential")
    assert stored.category == next(iter(site.config.categories))


def test_a_double_click_on_submit_makes_one_complaint(page: Page, site: Site) -> None:
    sign_in_with_keyboard(page, "siti")
    page.keyboard.type("Sampah menumpuk di pasar")
    page.get_by_role("button", name="Kirim laporan").dblclick()
    page.wait_for_url(re.compile(r"/terkirim$"))
    assert count_complaints(site.store) == 1


def test_admin_finds_a_failed_whatsapp_message_previews_and_replays_it_and_sees_the_audit_entry(
    page: Page, site: Site
) -> None:
    # A real Cloud API notification whose processing gave up: the admin's morning case.
    raw = (PAYLOADS / "meta" / "text.json").read_bytes()
    inbox_id = failed_row(
        site.store, raw, channel="whatsapp", provider="meta", error="upstream timed out", error_type="ProviderError"
    )
    failed_row(site.store, b"{not json", error="manual entry does not validate", error_type="PayloadError")
    sign_in_with_keyboard(page, "rina")

    menu(page, "Gagal")
    row = page.locator("table.list tbody tr", has_text=f"inbox-{inbox_id}")
    expect(row).to_contain_text("whatsapp")
    expect(row).to_contain_text("ProviderError")
    row.locator("details summary").click()
    expect(row.locator("pre")).to_contain_text("LAPOR jalan berlubang")
    shot(page, "07-gagal")
    page.get_by_label(f"Pilih inbox-{inbox_id}").check()
    page.get_by_role("button", name="Pratinjau (uji coba)").click()
    summary = page.locator("section.preview .ok")
    expect(summary).to_contain_text("Akan dibuat: Pengaduan “jalan berlubang di Jl. Sudirman")
    expect(summary).to_contain_text("WhatsApp")
    shot(page, "08-pratinjau")
    assert count_complaints(site.store) == 0

    page.get_by_role("button", name="Putar ulang sekarang").click()
    expect(page.get_by_role("status")).to_have_text("1 pesan diantrekan ulang.")
    wait_until(lambda: count_complaints(site.store) == 1, "the replayed message to be stored")
    [stored] = complaints(site.store)
    assert (stored.channel, stored.provider, stored.inbox_id) == ("whatsapp", "meta", inbox_id)

    menu(page, "Audit")
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Putar ulang")
    expect(rows.nth(0)).to_contain_text("diantrekan")
    expect(rows.nth(1)).to_contain_text("Uji coba")
    expect(rows.nth(0)).to_contain_text("rina")
    shot(page, "09-audit")
    menu(page, "Kanal")
    expect(page.locator("table.list")).to_contain_text("callcenter")
    shot(page, "10-kanal")


def test_agent_imports_a_csv_with_one_bad_row(page: Page, site: Site) -> None:
    sign_in_with_keyboard(page, "siti")
    menu(page, "Impor")
    with page.expect_download() as sample:
        page.get_by_role("link", name="Unduh contoh berkas CSV").click()
    text = Path(sample.value.path()).read_bytes().decode("utf-8-sig")
    sheet = text + "Jalan rusak parah,,merpati,,,,,,,,\r\n"
    page.get_by_label("Berkas CSV").set_input_files(
        {"name": "rekap-kecamatan.csv", "mimeType": "text/csv", "buffer": sheet.encode()}
    )
    page.get_by_role("button", name="Periksa berkas").click()
    bad = page.locator("tr.bad")
    expect(bad).to_have_count(1)
    expect(bad).to_contain_text("sumber: 'merpati' tidak dikenal")
    shot(page, "11-impor-pratinjau")

    page.get_by_role("button", name="Impor 2 laporan").click()
    expect(page.locator("#hasil-impor")).to_contain_text("2 laporan baru")
    shot(page, "12-impor-hasil")
    wait_until(lambda: count_complaints(site.store) == 2, "the imported rows to be stored")
    assert {c.provider for c in complaints(site.store)} == {"csv"}


def test_recap_exports_an_xlsx_that_openpyxl_opens(page: Page, site: Site) -> None:
    rows = "isi,sumber,kategori\r\nBanjir di RT 3,radio,banjir\r\nBanjir di RT 4,radio,banjir\r\nPungli,surat,\r\n"
    parsed = csv_import.read_csv(rows.encode(), site.config.categories)
    for row in parsed.good:
        site.gateway.inbox.accept_blocking(csv_import.inbox_item(row, "siti", "rekap.csv"))
    site.gateway.worker.wake.set()
    wait_until(lambda: count_complaints(site.store) == 3, "the rows to be stored")
    sign_in_with_keyboard(page, "siti")

    menu(page, "Rekap")
    expect(page.locator("#total")).to_have_text("3")
    shot(page, "13-rekap")
    with page.expect_download() as download:
        page.get_by_role("link", name="Unduh XLSX").click()
    book = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    lines = list(book["Rekap"].iter_rows(values_only=True))
    assert ("Total", None, "Semua laporan", 3) in lines
    assert ("Kategori", "banjir", "Banjir, Drainase & Irigasi", 2) in lines
    assert ("Sumber", "letter", "Surat", 1) in lines
    assert list(book["Sumber"].iter_rows(values_only=True))[1:] == [("radio", "Radio", 2), ("letter", "Surat", 1)]
