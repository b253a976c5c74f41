"""Media never delays a complaint: stored and acknowledged at once, each attachment fetched by its own job
(attempts, backoff, failed list, replay), shown pending or failed on the detail page; SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from gateway.config import Config
from gateway.replay import list_failed, parse_ref, replay
from sinks.store.db import Store
from sinks.store.models import FAILED, MediaFetch
from tests.channels.sms_http_support import PAYLOADS
from tests.channels.test_twilio import ACCOUNT_SID, AUTH_TOKEN, sign
from tests.support.e2e import complaint_records, eventually, stored_replies
from tests.support.provider_api import ANY, Canned, ProviderApi
from tests.web.support import Site, add_staff, live_site, quiet_channels, signed_in

MESSAGE_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM7d6c5b4a39281706f5e4d3c2b1a09f8e"
MEDIA_PATH = f"{MESSAGE_PATH}/Media/ME1a2b3c4d5e6f708192a3b4c5d6e7f809"
# Plain http: the staff pages' cookies are Secure behind an https public URL, and the test signs in over http.
PUBLIC_URL = "http://lapor.example.go.id"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF sampah di pasar"


@pytest.fixture
def api() -> Iterator[ProviderApi]:
    with ProviderApi() as stand_in:
        stand_in.route(ANY, f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", Canned.json({"sid": "SMack"}, 201))
        yield stand_in


def site_config(make_config: Callable[..., Config], api: ProviderApi, **overrides: Any) -> Config:
    channels: dict[str, Any] = quiet_channels()
    channels["twilio"] = {"enabled": True, "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base": api.url}
    return make_config(
        http={"public_url": PUBLIC_URL},
        media={"allow_private_hosts": True},  # the stand-in listens on loopback
        channels=channels,
        **overrides,
    )


@pytest.fixture
def site(make_config: Callable[..., Config], store: Store, api: ProviderApi) -> Iterator[Site]:
    add_staff(store)
    with live_site(site_config(make_config, api), store) as running:
        yield running


def post_mms(site: Site, api: ProviderApi, raw: bytes | None = None) -> None:
    raw = raw or (PAYLOADS / "twilio" / "whatsapp_image.form").read_bytes()
    raw = raw.replace(quote("https://api.twilio.com", safe="").encode(), quote(api.url, safe="").encode())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(PUBLIC_URL + "/webhooks/twilio", raw),
    }
    assert httpx.post(f"{site.url}/webhooks/twilio", content=raw, headers=headers, timeout=30).status_code == 200


def media_jobs(store: Store) -> list[MediaFetch]:
    with store.read() as session:
        return list(session.execute(select(MediaFetch)).scalars())


def test_a_media_outage_never_holds_back_the_complaint_or_its_ack_and_replay_attaches_the_file(
    site: Site, api: ProviderApi, store: Store
) -> None:
    api.route(ANY, MEDIA_PATH, Canned(status=503, body=b"media store down"))
    post_mms(site, api)

    # The complaint and its acknowledgement go out while the photo cannot be fetched.
    [ack] = eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")
    [record] = complaint_records(store)
    assert (ack.tracking_id, record["attachments"]) == (record["tracking_id"], [])
    tracking_id = record["tracking_id"]

    # The job retries with backoff, then lands in the failed list (worker.max_attempts is 3 in tests).
    [job] = eventually(lambda: [j for j in media_jobs(store) if j.status == FAILED], "the media job to give up")
    assert (job.tracking_id, job.attempts, job.error_type) == (tracking_id, 3, "ProviderError")
    assert f"media-{job.id}" in [row["id"] for row in list_failed(store)]
    with signed_in(site, "rina") as admin:
        detail = admin.get(f"/pengaduan/{tracking_id}").text
        assert "Lampiran gagal diambil" in detail and f"media-{job.id}" in detail
        assert f"media-{job.id}" in admin.get("/gagal").text

        # The media host is back: a replay fetches the photo and attaches it to the same complaint.
        api.route(ANY, MEDIA_PATH, Canned(body=JPEG, content_type="image/jpeg"))
        assert replay(store, parse_ref(f"media-{job.id}"))
        [record] = eventually(
            lambda: [r for r in complaint_records(store) if r["attachments"]], "the photo to be attached"
        )
        digest = hashlib.sha256(JPEG).hexdigest()
        assert record["attachments"] == [
            {
                "filename": "ME1a2b3c4d5e6f708192a3b4c5d6e7f809.jpg",
                "content_type": "image/jpeg",
                "size": len(JPEG),
                "sha256": digest,
            }
        ]
        detail = admin.get(f"/pengaduan/{tracking_id}").text
        assert f"/pengaduan/{tracking_id}/lampiran/{digest}" in detail
        assert not re.search(r"Lampiran (gagal|sedang)", detail)
    assert len(stored_replies(store)) == 1  # one acknowledgement, whatever the media did
    assert len(complaint_records(store)) == 1


def test_a_photo_without_caption_is_a_complaint_even_before_its_photo_arrives(
    site: Site, api: ProviderApi, store: Store
) -> None:
    api.route(ANY, MEDIA_PATH, Canned(status=503))
    raw = (PAYLOADS / "twilio" / "whatsapp_image.form").read_bytes()
    raw = re.sub(rb"&Body=[^&]*", b"&Body=", raw)
    raw = raw.replace(quote("https://api.twilio.com", safe="").encode(), quote(api.url, safe="").encode())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(PUBLIC_URL + "/webhooks/twilio", raw),
    }
    assert httpx.post(f"{site.url}/webhooks/twilio", content=raw, headers=headers, timeout=30).status_code == 200
    [ack] = eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")
    [record] = complaint_records(store)
    assert ack.tracking_id == record["tracking_id"]  # an acknowledgement, not the help text


def test_a_relative_media_url_the_api_does_not_know_fails_its_job_at_once_and_the_complaint_stands(
    site: Site, api: ProviderApi, store: Store
) -> None:
    # MediaUrl0=cat.jpg (relative, as some clients record it): resolved against api_base, which answers 404.
    raw = (PAYLOADS / "twilio" / "whatsapp_image.form").read_bytes()
    raw = re.sub(rb"MediaUrl0=[^&]*", b"MediaUrl0=cat.jpg", raw)
    api.route(ANY, "/cat.jpg", Canned(status=404, body=b'{"code": 20404}', content_type="application/json"))
    post_mms(site, api, raw)
    [ack] = eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")
    [job] = eventually(lambda: [j for j in media_jobs(store) if j.status == FAILED], "the media job to fail")
    assert (job.attempts, job.error_type) == (1, "ProviderRejected")  # a 404 is not retried
    assert [call.path for call in api.requests if call.method == "GET"] == ["/cat.jpg"]
    [record] = complaint_records(store)
    assert (record["tracking_id"], record["attachments"]) == (ack.tracking_id, [])


def test_the_detail_page_shows_an_attachment_still_being_fetched(
    make_config: Callable[..., Config], store: Store, api: ProviderApi
) -> None:
    api.route(ANY, MEDIA_PATH, Canned(status=503))
    add_staff(store)
    slow_retries = {"backoff_initial_s": 600, "backoff_max_s": 600}
    with live_site(site_config(make_config, api, worker=slow_retries), store) as site:
        post_mms(site, api)
        [job] = eventually(lambda: [j for j in media_jobs(store) if j.attempts == 1], "the first attempt")
        assert job.status == "pending"
        [record] = complaint_records(store)
        with signed_in(site, "rina") as admin:
            detail = admin.get(f"/pengaduan/{record['tracking_id']}").text
    assert "Lampiran sedang diambil" in detail and f"media-{job.id}" in detail
