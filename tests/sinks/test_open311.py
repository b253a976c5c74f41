"""The Open311 forwarder (send half) and the updates poller (fetch half) against a GeoReport v2 server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway import agency_sync, lifecycle, media_links
from gateway.app import Gateway
from gateway.config import Config
from sinks.store.db import Store
from sinks.store.models import DONE, FAILED
from tests.support.complaints import add_ack, add_complaint, complaint, events, outbox_for
from tests.support.open311_server import API_KEY, Open311Server, Service

ADMIN = lifecycle.Actor("staff", "rina", admin=True)
MEDIA_SECRET = base64.b64encode(b"media-link-secret").decode()
PHOTO = {"filename": "lubang.jpg", "content_type": "image/jpeg", "size": 10, "sha256": "ab" * 32}


@pytest.fixture
def agency() -> Iterator[Open311Server]:
    services = [
        Service("JLN-01", "Jalan rusak", attributes=["lapor_tracking_id"]),
        Service("PJU-01", "Lampu jalan"),  # no metadata: no definition to ask for
        Service("SMP-01", "Sampah", type="batch"),
    ]
    with Open311Server(services) as server:
        yield server


def sink(server: Open311Server, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "pupr311",
        "type": "open311",
        "endpoint": server.url,
        "api_key": API_KEY,
        "service_codes": {"jalan": "JLN-01", "pju": "PJU-01", "sampah": "SMP-01"},
        "timeout_s": 5,
        **overrides,
    }


@pytest.fixture
def make_gateway(
    make_config: Callable[..., Config], store: Store, agency: Open311Server
) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def make(**overrides: Any) -> Gateway:
        config = make_config(
            sinks=[sink(agency, **overrides)],
            agencies={"dpupr": {"name": "Dinas PUPR", "categories": ["jalan", "pju", "sampah"], "forward": "pupr311"}},
            lifecycle={"media_secret": MEDIA_SECRET},
        )
        gateway = Gateway(config, store)
        started.append(gateway)
        return gateway

    yield make


def forward(gateway: Gateway, **columns: Any) -> str:
    columns.setdefault("lat", -6.87)
    columns.setdefault("lon", 109.13)
    tracking_id = add_complaint(gateway.store, status="verified", **columns)
    change = lifecycle.Change(to="forwarded", agency="dpupr")
    lifecycle.transition(gateway.store, gateway.config, tracking_id, change, ADMIN)
    asyncio.run(gateway.worker.run_until_idle())
    return tracking_id


def poll(gateway: Gateway) -> int:
    async def once() -> int:
        async with httpx.AsyncClient() as client:
            sink_config = gateway.config.sink("pupr311")
            assert sink_config is not None
            return await agency_sync.poll_once(gateway.config, gateway.store, sink_config, client)

    return asyncio.run(once())


def test_a_forwarded_complaint_is_posted_once_with_its_id_attribute_and_photo_link(
    make_gateway: Callable[..., Gateway], agency: Open311Server
) -> None:
    gateway = make_gateway()
    tracking_id = forward(
        gateway, reporter_name="Budi Santoso", reporter_phone="+6281234567890", attachments=[PHOTO], category="jalan"
    )
    (form,) = agency.posts
    assert form["api_key"] == API_KEY and form["service_code"] == "JLN-01"
    assert form["description"].startswith(f"{tracking_id}: Jalan berlubang")
    assert (form["lat"], form["long"]) == ("-6.87", "109.13")
    assert form["attribute[lapor_tracking_id]"] == tracking_id
    assert (form["first_name"], form["last_name"], form["phone"]) == ("Budi", "Santoso", "+6281234567890")
    media = urlsplit(form["media_url"])
    query = {k: v[0] for k, v in parse_qs(media.query).items()}
    assert media.path == f"/media/{tracking_id}/{PHOTO['sha256']}"
    assert media_links.valid(MEDIA_SECRET, tracking_id, PHOTO["sha256"], int(query["expires"]), query["sig"])
    assert not media_links.valid(MEDIA_SECRET, tracking_id, PHOTO["sha256"], int(query["expires"]), "0" * 64)
    later = datetime.now(UTC) + timedelta(days=4)
    assert not media_links.valid(MEDIA_SECRET, tracking_id, PHOTO["sha256"], int(query["expires"]), query["sig"], later)
    (row,) = outbox_for(gateway.store, tracking_id, "forward")
    assert (row.status, row.provider_message_id) == (DONE, "1000")


def test_confidential_reporters_are_not_named_and_services_without_metadata_get_no_attribute(
    make_gateway: Callable[..., Gateway], agency: Open311Server
) -> None:
    gateway = make_gateway()
    forward(
        gateway,
        reporter_name="Siti",
        anonymity="confidential",
        category="pju",
        lat=None,
        lon=None,
        location_text="Jl. Ahmad Yani",
    )
    (form,) = agency.posts
    assert "first_name" not in form and "phone" not in form
    assert "attribute[lapor_tracking_id]" not in form
    assert form["address_string"] == "Jl. Ahmad Yani"
    assert agency.calls_to("services/PJU-01.json") == []


def test_a_batch_service_token_becomes_an_id(make_gateway: Callable[..., Gateway], agency: Open311Server) -> None:
    agency.token_lookups = 10  # not ready while the forward waits: the poller asks later
    gateway = make_gateway()
    tracking_id = forward(gateway, category="sampah")
    (row,) = outbox_for(gateway.store, tracking_id, "forward")
    assert row.provider_message_id == "token:tok-1000"
    agency.token_lookups = 0
    agency.tokens["tok-1000"][1] = 0
    poll(gateway)
    assert complaint(gateway.store, tracking_id).agency_ref == "1000"
    assert outbox_for(gateway.store, tracking_id, "forward")[0].provider_message_id == "1000"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"api_key": "salah"}, "403 Invalid api_key"),
        ({"service_codes": {"jalan": "TIDAK-ADA"}}, "no service 'TIDAK-ADA'"),
    ],
)
def test_error_arrays_go_to_the_failed_list_with_their_description(
    make_gateway: Callable[..., Gateway], agency: Open311Server, overrides: dict[str, Any], error: str
) -> None:
    gateway = make_gateway(**overrides)
    tracking_id = forward(gateway, category="jalan")
    (row,) = outbox_for(gateway.store, tracking_id, "forward")
    assert (row.status, row.attempts, row.error_type) == (FAILED, 1, "ProviderRejected")
    assert error in (row.last_error or "")
    assert agency.posts == []


def test_a_post_answered_too_late_is_found_on_retry_and_not_made_twice(
    make_gateway: Callable[..., Gateway], agency: Open311Server
) -> None:
    agency.stall_next_post = 3.0
    gateway = make_gateway(timeout_s=1.0)
    tracking_id = forward(gateway, category="jalan")
    (row,) = outbox_for(gateway.store, tracking_id, "forward")
    assert (row.status, row.provider_message_id, row.attempts) == (DONE, "1000", 2)
    assert len(agency.posts) == 1  # the retry looked first and found the request the agency already had
    assert agency.calls_to("requests.json")[0]["service_code"] == ["JLN-01"]


def test_updates_come_back_in_order_once_and_never_backwards(
    make_gateway: Callable[..., Gateway], agency: Open311Server
) -> None:
    gateway = make_gateway()
    tracking_id = forward(gateway, category="jalan", channel="whatsapp", provider="meta", reply_address="6281234567890")
    add_ack(gateway.store, tracking_id, "whatsapp", "whatsapp", "6281234567890", {})
    t0 = datetime.now(UTC).replace(microsecond=0)

    agency.update("1000", "open", "Tim sudah dijadwalkan.", t0 + timedelta(minutes=1))
    assert poll(gateway) == 1
    assert poll(gateway) == 0  # the same update twice: one event
    agency.update("1000", "closed", "Lubang sudah ditambal.", t0 + timedelta(minutes=3))
    assert poll(gateway) == 1
    agency.update("1000", "open", "Tim sudah dijadwalkan.", t0 + timedelta(minutes=1))  # an old state served late
    assert poll(gateway) == 0

    history = [(e.from_status, e.to_status, e.public_note, e.source) for e in events(gateway.store, tracking_id)]
    assert history[1:] == [
        ("forwarded", "in_progress", "Tim sudah dijadwalkan.", "open311"),
        ("in_progress", "resolved", "Lubang sudah ditambal.", "open311"),
    ]
    assert complaint(gateway.store, tracking_id).status == "resolved"
    answers = [r.payload["text"] for r in outbox_for(gateway.store, tracking_id, "reply")]
    assert any("Lubang sudah ditambal." in text for text in answers)


def test_an_older_update_arriving_after_a_newer_one_is_ignored(
    make_gateway: Callable[..., Gateway], agency: Open311Server
) -> None:
    gateway = make_gateway()
    tracking_id = forward(gateway, category="jalan")
    t0 = datetime.now(UTC).replace(microsecond=0)
    agency.update("1000", "open", "Dikerjakan minggu ini.", t0 + timedelta(minutes=5))
    poll(gateway)
    agency.update("1000", "closed", "Selesai (catatan lama).", t0 + timedelta(minutes=2))
    assert poll(gateway) == 0
    assert complaint(gateway.store, tracking_id).status == "in_progress"


def test_the_poller_asks_for_at_most_50_ids_a_call(make_gateway: Callable[..., Gateway], agency: Open311Server) -> None:
    gateway = make_gateway()
    for _ in range(55):
        tracking_id = add_complaint(gateway.store, status="verified", lat=-6.9, lon=109.1)
        lifecycle.transition(gateway.store, gateway.config, tracking_id, lifecycle.Change(to="forwarded"), ADMIN)
    asyncio.run(gateway.worker.run_until_idle(max_rounds=1000))
    assert len(agency.posts) == 55
    poll(gateway)
    asked = [
        q["service_request_id"][0].split(",") for q in agency.calls_to("requests.json") if "service_request_id" in q
    ]
    assert sorted(len(ids) for ids in asked) == [5, 50]


def test_the_photo_link_serves_the_photo_until_it_expires(make_gateway: Callable[..., Gateway]) -> None:
    from pathlib import Path

    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.context import AttachmentFiles

    gateway = make_gateway()
    photo = AttachmentFiles(Path(gateway.config.data_dir))(b"\xff\xd8\xff jalan berlubang", "lubang.jpg", "image/jpeg")
    listed = {
        "filename": photo.filename,
        "content_type": photo.content_type,
        "size": photo.size,
        "sha256": photo.sha256,
    }
    tracking_id = add_complaint(gateway.store, attachments=[listed])
    soon = datetime.now(UTC) + timedelta(hours=1)
    link = media_links.signed_url("", MEDIA_SECRET, tracking_id, photo.sha256, soon)
    past = media_links.signed_url("", MEDIA_SECRET, tracking_id, photo.sha256, datetime.now(UTC) - timedelta(hours=1))
    client = TestClient(create_app(gateway))
    answer = client.get(link)
    assert (answer.status_code, answer.content, answer.headers["content-type"]) == (
        200,
        b"\xff\xd8\xff jalan berlubang",
        "image/jpeg",
    )
    assert client.get(past).status_code == 403
    assert client.get(link.replace(tracking_id, add_complaint(gateway.store))).status_code == 403


def test_one_instance_polls_and_another_takes_over_when_it_stops(
    make_gateway: Callable[..., Gateway], agency: Open311Server
) -> None:
    from gateway.context import exclusive_lock

    gateway = make_gateway(poll_interval_s=0.1)
    sink_config = gateway.config.sink("pupr311")
    assert sink_config is not None
    forward(gateway, category="jalan")
    lock = exclusive_lock(gateway.store, gateway.config.data_dir)

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            context = gateway.make_context(http)
            first = asyncio.create_task(agency_sync.poll_open311(gateway.config, gateway.store, sink_config, context))
            while not [q for q in agency.calls_to("requests.json") if "service_request_id" in q]:
                await asyncio.sleep(0.05)
            with pytest.raises(TimeoutError):  # a second instance waits for the lock
                await asyncio.wait_for(lock("open311-poll:pupr311").__aenter__(), 1.0)
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            async with asyncio.timeout(30), lock("open311-poll:pupr311"):
                pass  # free again once the first stopped

    asyncio.run(scenario())
