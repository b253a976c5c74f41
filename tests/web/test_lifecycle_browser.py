"""The lifecycle buttons in a real browser (Debian's Chromium via playwright, SQLite): an admin verifies and
forwards with the suggested agency preselected; the agency's liaison officer answers from the inbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from gateway import users
from sinks.store.db import Store, open_store, upgrade
from tests.conftest import build_config
from tests.support.complaints import add_complaint, complaint
from tests.web.support import ARTIFACTS, PASSWORD, Site, add_staff, live_site, quiet_channels
from tests.web.test_browser import browser  # the module-scoped Chromium

__all__ = ["browser"]
AGENCIES = {
    "dpupr": {"name": "Dinas PUPR", "categories": ["jalan"]},
    "dlh": {"name": "Dinas Lingkungan Hidup", "categories": ["sampah"]},
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path}/lapor.db"
    store: Store = open_store(url)
    upgrade(store)
    add_staff(store)
    users.create_user(store, "dlh", PASSWORD, "agency", "dlh")
    config = build_config(url, tmp_path / "data", channels=quiet_channels(), agencies=AGENCIES)
    try:
        with live_site(config, store) as running:
            yield running
    finally:
        store.dispose()


def sign_in(browser: Browser, site: Site, username: str) -> Page:
    page = browser.new_context(base_url=site.url, viewport={"width": 1366, "height": 768}, locale="id-ID").new_page()
    page.goto("/login")
    page.get_by_label("Nama pengguna").fill(username)
    page.get_by_label("Kata sandi").fill(PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    return page


def test_verify_forward_and_answer_by_clicking(browser: Browser, site: Site) -> None:
    tracking_id = add_complaint(site.store, category="sampah", body="Sampah menumpuk di TPS Sukajadi")
    admin = sign_in(browser, site, "rina")
    admin.goto("/verifikasi")
    admin.get_by_role("link", name=tracking_id).click()
    admin.get_by_role("button", name="Verifikasi").click()
    expect(admin.locator("ol.timeline")).to_contain_text("Terverifikasi")
    expect(admin.get_by_label("Instansi tujuan")).to_have_value("dlh")  # the routing rule's suggestion
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin.screenshot(path=str(ARTIFACTS / "web-lifecycle-01-teruskan.png"), full_page=True)
    admin.get_by_role("button", name="Teruskan ke instansi").click()
    expect(admin.locator("ol.timeline")).to_contain_text("Diteruskan")
    assert (complaint(site.store, tracking_id).status, complaint(site.store, tracking_id).agency) == (
        "forwarded",
        "dlh",
    )

    officer = sign_in(browser, site, "dlh")
    expect(officer).to_have_url(re.compile(r"/instansi$"))
    officer.get_by_role("link", name=tracking_id).click()
    officer.get_by_label("Jawaban untuk pelapor").fill("Sampah sudah diangkut pagi ini.")
    officer.get_by_role("button", name="Tandai selesai").click()
    expect(officer.locator("ol.timeline")).to_contain_text("Sampah sudah diangkut pagi ini.")
    officer.screenshot(path=str(ARTIFACTS / "web-lifecycle-02-instansi.png"), full_page=True)
    assert complaint(site.store, tracking_id).status == "resolved"
