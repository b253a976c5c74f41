"""The public status page ``/cek/{tracking_id}`` shows the lifecycle's public timeline and nothing personal."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from gateway import lifecycle
from gateway.config import Config
from sinks.store.db import Store
from tests.support.complaints import add_complaint

ADMIN = lifecycle.Actor("staff", "rina.kominfo", admin=True)


def test_the_status_page_shows_each_step_the_agency_and_its_public_answer(
    make_config: Callable[..., Config], store: Store, running_client: Callable[[Config], TestClient]
) -> None:
    config = make_config(agencies={"dlh": {"name": "Dinas Lingkungan Hidup", "categories": ["sampah"]}})
    tracking_id = add_complaint(store, category="sampah", reporter_name="Budi Santoso", reporter_phone="+6281234567890")
    for change in (
        lifecycle.Change(to="verified", internal_note="pelapor sering melapor"),
        lifecycle.Change(to="forwarded", internal_note="minta cepat"),
        lifecycle.Change(to="resolved", public_note="Sampah sudah diangkut truk DLH."),
    ):
        lifecycle.transition(store, config, tracking_id, change, ADMIN)
    with running_client(config) as client:
        page = client.get(f"/cek/{tracking_id}").text
    timeline = page[page.index('id="riwayat"') :]
    assert timeline.index("Terverifikasi") < timeline.index("Diteruskan") < timeline.index("Selesai")
    assert "diteruskan ke instansi terkait · Dinas Lingkungan Hidup" in timeline
    assert "Sampah sudah diangkut truk DLH." in timeline
    assert 'id="instansi">Dinas Lingkungan Hidup<' in page
    for private in ("rina.kominfo", "pelapor sering melapor", "minta cepat", "Budi", "6281234567890"):
        assert private not in page
