"""The issue's "done when", end to end on a served gateway (SQLite and PostgreSQL):

a citizen writes on WhatsApp; an admin verifies and forwards it in the web page; the agency's Open311
server receives it once; its "closed" update comes back through the poller; the citizen reads the answer
in the same WhatsApp chat, asks STATUS, says "belum selesai" and the complaint is open again.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.whatsapp import sign
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.meta_rig import fake_provider_api
from tests.channels.test_whatsapp import APP_SECRET, MESSAGES_PATH, SENT
from tests.support.complaints import complaint, events
from tests.support.e2e import eventually, stored_complaints
from tests.support.open311_server import API_KEY, Open311Server, Service
from tests.support.provider_api import ProviderApi
from tests.web.support import Site, add_staff, csrf_of, live_site, quiet_channels, signed_in

TEXT = json.loads((Path(__file__).parent / "payloads" / "meta" / "text.json").read_text(encoding="utf-8"))
CHAT = "6281234567890"
FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


def message(text: str, wamid: str) -> bytes:
    """The Meta text payload with another text and message id (the citizen writing again)."""
    body = copy.deepcopy(TEXT)
    entry: dict[str, Any] = body["entry"][0]["changes"][0]["value"]["messages"][0]
    entry["text"]["body"], entry["id"] = text, wamid
    return json.dumps(body).encode()


@pytest.fixture
def graph_api() -> Iterator[ProviderApi]:
    with fake_provider_api() as api:
        api.route("POST", MESSAGES_PATH, SENT)
        yield api


@pytest.fixture
def agency() -> Iterator[Open311Server]:
    with Open311Server([Service("JLN-01", "Jalan rusak", attributes=["lapor_tracking_id"])]) as server:
        yield server


@pytest.fixture
def site(
    make_config: Callable[..., Config], store: Store, graph_api: ProviderApi, agency: Open311Server
) -> Iterator[Site]:
    add_staff(store)
    whatsapp = {
        "enabled": True,
        "verify_token": "kominfo-verify",
        "app_secret": APP_SECRET,
        "access_token": "EAAG-test-token",
        "phone_number_id": "106540352242922",
        "api_base": graph_api.url,
    }
    config = make_config(
        channels={**quiet_channels(), "whatsapp": whatsapp},
        sinks=[
            {
                "name": "pupr311",
                "type": "open311",
                "endpoint": agency.url,
                "api_key": API_KEY,
                "default_service_code": "JLN-01",
                "poll_interval_s": 0.2,
            }
        ],
        agencies={"dpupr": {"name": "Dinas PUPR", "forward": "pupr311"}},
    )
    with live_site(config, store) as running:
        yield running


def post_whatsapp(site: Site, body: bytes) -> None:
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET), "Content-Type": "application/json"}
    assert httpx.post(f"{site.url}/webhooks/whatsapp", content=body, headers=headers).status_code == 200


def chat_texts(graph_api: ProviderApi) -> list[str]:
    return [r.json()["text"]["body"] for r in graph_api.seen("POST", MESSAGES_PATH) if r.json()["to"] == CHAT]


def press(client: httpx.Client, tracking_id: str, to: str) -> None:
    html = client.get(f"/pengaduan/{tracking_id}").text
    key = next(k for k in FORM_KEY.findall(html) if k.endswith(f"-{to}"))
    fields = {"csrf_token": csrf_of(html), "form_key": key, "to": to}
    if to == "forwarded":  # the page preselects the suggestion; a browser sends the selected option
        fields["agency"] = re.search(r'<option value="([^"]+)" selected>', html).group(1)  # type: ignore[union-attr]
    assert client.post(f"/pengaduan/{tracking_id}/status", data=fields).status_code == 303


def test_verified_forwarded_answered_by_open311_and_read_in_the_same_whatsapp_chat(
    site: Site, graph_api: ProviderApi, agency: Open311Server
) -> None:
    post_whatsapp(site, message("LAPOR jalan berlubang di Jl. Sudirman depan pasar", "wamid.lapor-1"))
    (stored,) = eventually(lambda: stored_complaints(site.store), "the complaint")
    tracking_id = stored.tracking_id
    eventually(lambda: any(tracking_id in text for text in chat_texts(graph_api)), "the acknowledgement")

    with signed_in(site, "rina") as admin:
        press(admin, tracking_id, "verified")
        press(admin, tracking_id, "forwarded")
    eventually(lambda: agency.posts, "the request at the agency")
    request_id = eventually(lambda: complaint(site.store, tracking_id).agency_ref, "the request id kept")

    agency.update(request_id, "closed", "Lubang sudah ditambal dan diaspal.", datetime.now(UTC) + timedelta(seconds=1))
    eventually(lambda: complaint(site.store, tracking_id).status == "resolved", "the update applied")
    answer = eventually(
        lambda: [t for t in chat_texts(graph_api) if "Lubang sudah ditambal dan diaspal." in t],
        "the answer in the chat",
    )
    assert answer[0].startswith(f"Laporan {tracking_id} telah diselesaikan oleh Dinas PUPR")
    assert len(agency.posts) == 1  # received once

    post_whatsapp(site, message(f"STATUS {tracking_id}", "wamid.status-1"))
    eventually(lambda: [t for t in chat_texts(graph_api) if t.startswith(f"Status laporan {tracking_id}: selesai")])
    status = next(t for t in chat_texts(graph_api) if t.startswith(f"Status laporan {tracking_id}"))
    assert status.endswith("Instansi: Dinas PUPR. Tanggapan: Lubang sudah ditambal dan diaspal.")

    post_whatsapp(site, message("belum selesai, lubangnya masih ada", "wamid.reopen-1"))
    eventually(lambda: complaint(site.store, tracking_id).status == "in_progress", "the complaint reopened")
    eventually(lambda: [t for t in chat_texts(graph_api) if "dibuka kembali" in t], "the reopen message")
    history = [(e.to_status, e.actor_kind, e.source) for e in events(site.store, tracking_id)]
    assert history == [
        ("verified", "staff", "web"),
        ("forwarded", "staff", "web"),
        ("resolved", "agency", "open311"),
        ("in_progress", "citizen", "channel"),
    ]
    with signed_in(site, "rina") as admin:
        recap = admin.get("/rekap").text
    table = recap[recap.index('id="per-instansi"') :]
    assert re.search(r"Dinas PUPR</th><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">1</td>", table)
    assert "100.0%" in table  # the completion rate the region is judged on
    assert "<title>Tingkat penyelesaian per instansi (%)</title><desc>Dinas PUPR: 100</desc>" in recap  # the chart
