"""The lifecycle in the web pages: buttons and timeline, the verification queue, the agency inbox, roles."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest

from gateway import users
from gateway.config import Config
from sinks.store.db import Store
from sinks.store.models import utcnow
from tests.support.complaints import add_complaint, complaint, events
from tests.web.support import PASSWORD, Site, add_staff, csrf_of, live_site, quiet_channels, signed_in

AGENCIES = {
    "dpupr": {"name": "Dinas PUPR", "categories": ["jalan"]},
    "dlh": {"name": "Dinas Lingkungan Hidup", "categories": ["sampah"]},
}
FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


@pytest.fixture
def site(make_config: Callable[..., Config], store: Store) -> Iterator[Site]:
    add_staff(store)
    users.create_user(store, "pupr", PASSWORD, "agency", "dpupr")
    with live_site(make_config(channels=quiet_channels(), agencies=AGENCIES), store) as running:
        yield running


def press(client: httpx.Client, page: str, tracking_id: str, to: str, **fields: str) -> httpx.Response:
    """Send one of the page's lifecycle forms as a browser would: its CSRF token and its one-time key."""
    html = client.get(page).text
    key = next(k for k in FORM_KEY.findall(html) if k.endswith(f"-{to}"))
    data = {"csrf_token": csrf_of(html), "form_key": key, "to": to, **fields}
    return client.post(f"/pengaduan/{tracking_id}/status", data=data)


def test_an_admin_verifies_and_forwards_with_the_suggested_agency_preselected(site: Site) -> None:
    tracking_id = add_complaint(site.store, category="sampah")
    with signed_in(site, "rina") as admin:
        page = admin.get(f"/pengaduan/{tracking_id}").text
        assert ">Verifikasi</button>" in page and ">Tolak</button>" in page
        assert "Belum ada perubahan status." in page
        assert press(admin, f"/pengaduan/{tracking_id}", tracking_id, "verified").status_code == 303
        page = admin.get(f"/pengaduan/{tracking_id}").text
        assert '<option value="dlh" selected>Dinas Lingkungan Hidup (disarankan)</option>' in page
        answer = press(admin, f"/pengaduan/{tracking_id}", tracking_id, "forwarded", agency="dlh")
        assert answer.status_code == 303
        page = admin.get(f"/pengaduan/{tracking_id}").text
    assert "Instansi: <strong>Dinas Lingkungan Hidup</strong>" in page
    assert "Terverifikasi → <strong>Diteruskan</strong>" in page
    assert [(e.to_status, e.source) for e in events(site.store, tracking_id)] == [
        ("verified", "web"),
        ("forwarded", "web"),
    ]


def test_a_form_sent_twice_makes_one_event_and_a_refused_move_explains_itself(site: Site) -> None:
    tracking_id = add_complaint(site.store)
    with signed_in(site, "rina") as admin:
        html = admin.get(f"/pengaduan/{tracking_id}").text
        key = next(k for k in FORM_KEY.findall(html) if k.endswith("-verified"))
        data = {"csrf_token": csrf_of(html), "form_key": key, "to": "verified"}
        assert admin.post(f"/pengaduan/{tracking_id}/status", data=data).status_code == 303
        assert admin.post(f"/pengaduan/{tracking_id}/status", data=data).status_code == 303
        assert len(events(site.store, tracking_id)) == 1
        refused = admin.post(
            f"/pengaduan/{tracking_id}/status", data={**data, "form_key": "other", "to": "resolved", "public_note": "x"}
        )
    assert refused.status_code == 409
    assert "Yang boleh: Diteruskan, Ditolak." in refused.text


def test_the_agency_answers_from_its_inbox_and_sees_nothing_else(site: Site) -> None:
    ours = add_complaint(site.store, status="forwarded", agency="dpupr")
    theirs = add_complaint(site.store, status="forwarded", agency="dlh", category="sampah")
    with signed_in(site, "pupr") as agency:
        assert agency.get("/", follow_redirects=False).headers["location"] == "/instansi"
        inbox = agency.get("/instansi").text
        assert ours in inbox and theirs not in inbox
        page = f"/instansi/pengaduan/{ours}"
        assert press(agency, page, ours, "in_progress", public_note="Tim ke lokasi.").status_code == 303
        assert press(agency, page, ours, "resolved", public_note="Sudah ditambal.").status_code == 303
        for path in ("/pengaduan", f"/pengaduan/{ours}", "/laporan/baru", "/rekap", "/verifikasi", "/gagal"):
            assert agency.get(path).status_code == 403, path
        assert agency.get(f"/instansi/pengaduan/{theirs}").status_code == 403
        shown = agency.get(page).text
    assert complaint(site.store, ours).status == "resolved"
    assert "Sudah ditambal." in shown and ">Tutup laporan</button>" not in shown  # closing is the admin's


def test_an_agent_sees_the_timeline_but_no_buttons(site: Site) -> None:
    tracking_id = add_complaint(site.store, status="forwarded", agency="dpupr")
    with signed_in(site, "siti") as agent:
        page = agent.get(f"/pengaduan/{tracking_id}").text
        assert "Status dan tindak lanjut" in page and '<button type="submit" class="primary">Tandai selesai' not in page
        assert agent.get("/verifikasi").status_code == 403
        assert agent.get("/instansi").status_code == 403


def test_the_queue_lists_overdue_first_then_oldest(site: Site) -> None:
    now = utcnow()
    old = add_complaint(site.store, received_at=now - timedelta(days=2), due_at=now + timedelta(days=1))
    late = add_complaint(site.store, received_at=now - timedelta(hours=1), due_at=now - timedelta(minutes=5))
    new = add_complaint(site.store, received_at=now, due_at=now + timedelta(days=3))
    with signed_in(site, "rina") as admin:
        page = admin.get("/verifikasi").text
        listing = admin.get("/pengaduan").text
    assert page.index(late) < page.index(old) < page.index(new)
    assert page.count("Terlambat</span>") == 1
    assert listing.count("Terlambat</span>") == 1


def test_the_channels_page_shows_a_disabled_sink(make_config: Callable[..., Config], store: Store) -> None:
    from gateway import agency_sync

    add_staff(store)
    config = make_config(channels=quiet_channels(), sinks=[{"name": "pusat", "url": "http://127.0.0.1:9/hooks"}])
    agency_sync.disable(store, "pusat", "sink pusat answered 410: gone")
    with live_site(config, store) as running, signed_in(running, "rina") as admin:
        page = admin.get("/kanal").text
    assert "Dinonaktifkan sejak" in page and "lapor-gateway sinks enable pusat" in page


def test_the_agency_downloads_the_photos_of_its_own_complaints_only(site: Site) -> None:
    from pathlib import Path

    from gateway.context import AttachmentFiles

    photo = AttachmentFiles(Path(site.config.data_dir))(b"\xff\xd8 foto lubang", "lubang.jpg", "image/jpeg")
    listed = [{"filename": "lubang.jpg", "content_type": "image/jpeg", "size": photo.size, "sha256": photo.sha256}]
    ours = add_complaint(site.store, status="forwarded", agency="dpupr", attachments=listed)
    theirs = add_complaint(site.store, status="forwarded", agency="dlh", attachments=listed)
    with signed_in(site, "pupr") as agency:
        page = agency.get(f"/instansi/pengaduan/{ours}").text
        link = f"/instansi/pengaduan/{ours}/lampiran/{photo.sha256}"
        assert link in page
        assert agency.get(link).content == b"\xff\xd8 foto lubang"
        assert agency.get(f"/instansi/pengaduan/{theirs}/lampiran/{photo.sha256}").status_code == 403


def test_urgent_complaints_come_before_older_ones_but_after_the_overdue(site: Site) -> None:
    now = utcnow()
    older = add_complaint(site.store, received_at=now - timedelta(days=1), due_at=now + timedelta(days=2))
    urgent = add_complaint(site.store, received_at=now, due_at=now + timedelta(days=3), priority="urgent")
    late = add_complaint(site.store, received_at=now - timedelta(hours=2), due_at=now - timedelta(minutes=1))
    with signed_in(site, "rina") as admin:
        page = admin.get("/verifikasi").text
    assert page.index(late) < page.index(urgent) < page.index(older)
    assert page.count("Mendesak</span>") == 1
