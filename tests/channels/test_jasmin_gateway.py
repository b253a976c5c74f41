"""Jasmin through the real gateway (SQLite and PostgreSQL): MO → ACK/Jasmin after commit → complaint → /send."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient

from channels.gsm import gsm_decode, gsm_encode
from gateway.app import Gateway, create_app
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.sms_http_support import PAYLOADS, serve_app
from tests.conftest import bearer
from tests.support.e2e import complaint_records, eventually, inbox_count, post_at_once, stored_inbox, stored_replies
from tests.support.provider_api import ANY, Canned, ProviderApi

SECRET = "jasmin-to-lapor"
WEBHOOK = f"/webhooks/jasmin?secret={SECRET}"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SUCCESS = Canned(body=b'Success "07033084-5cfd-4812-90a4-e4d24ffb6e3d"')


def payload(name: str) -> bytes:
    return (PAYLOADS / "jasmin" / name).read_bytes()


@pytest.fixture
def jasmin_api() -> Iterator[ProviderApi]:
    with ProviderApi() as api:
        api.route(ANY, "/send", SUCCESS)
        yield api


@pytest.fixture
def jasmin_config(make_config: Callable[..., Config], jasmin_api: ProviderApi) -> Config:
    return make_config(
        channels={
            "jasmin": {
                "enabled": True,
                "secret": SECRET,
                "send_url": f"{jasmin_api.url}/send",
                "username": "lapor",
                "password": "rahasia",
            }
        }
    )


def sends(api: ProviderApi) -> list[dict[str, str]]:
    return [dict(parse_qsl(call.body.decode())) for call in api.requests if call.path == "/send"]


def test_ucs2_mo_is_acked_after_commit_and_becomes_a_complaint_answered_via_send(
    jasmin_config: Config, store: Store, running_client: Callable[[Config], TestClient], jasmin_api: ProviderApi
) -> None:
    body = payload("ucs2_emoji.form")
    with running_client(jasmin_config) as client:
        response = client.post(WEBHOOK, content=body, headers=FORM)
        assert (response.status_code, response.content) == (200, b"ACK/Jasmin")
        [row] = stored_inbox(store)  # the ACK came after this row was committed
        assert (row.channel, row.provider, row.external_id) == (
            "sms",
            "jasmin",
            "a1b2c3d4-e5f6-4711-8899-aabbccddeeff",
        )
        [reply] = eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")

    [record] = complaint_records(store)
    assert (record["channel"], record["provider"]) == ("sms", "jasmin")
    assert record["body"] == "pungli di kantor desa 😠 tolong"
    assert record["reporter"]["phone"] == "+6285600011122"
    ack = "Laporan Anda diterima. No. {0}. Cek status: kirim STATUS {0}".format(record["tracking_id"])
    assert sends(jasmin_api) == [
        {
            "username": "lapor",
            "password": "rahasia",
            "to": "6285600011122",
            "from": "1708",
            "coding": "0",
            "hex-content": gsm_encode(ack).hex(),
        }
    ]
    assert reply.provider_message_id == "07033084-5cfd-4812-90a4-e4d24ffb6e3d"


def test_concurrent_and_repeated_deliveries_make_one_complaint_and_all_are_acked(
    jasmin_config: Config, store: Store, jasmin_api: ProviderApi
) -> None:
    body = payload("gsm_text.form")
    with serve_app(create_app(Gateway(jasmin_config, store)), lifespan=True) as base_url:
        answers = post_at_once(base_url, WEBHOOK, body, FORM, 12)
        eventually(lambda: stored_replies(store, status="done"), "the acknowledgement to be sent")
        answers += post_at_once(base_url, WEBHOOK, body, FORM, 1)

    assert [answer.content for answer in answers] == [b"ACK/Jasmin"] * 13
    assert inbox_count(store) == 1
    assert len(complaint_records(store)) == 1
    assert len(sends(jasmin_api)) == 1


def test_keyword_only_sms_gets_the_help_text_and_no_complaint(
    jasmin_config: Config, store: Store, running_client: Callable[[Config], TestClient], jasmin_api: ProviderApi
) -> None:
    body = (
        b"id=5e1f0c2a-help&from=6281234567890&to=1708&origin-connector=smppc&coding=0&content=LAPOR&binary=4C41504F52"
    )
    with running_client(jasmin_config) as client:
        assert client.post(WEBHOOK, content=body, headers=FORM).content == b"ACK/Jasmin"
        eventually(lambda: stored_replies(store, status="done"), "the help text to be sent")
    assert complaint_records(store) == []
    assert gsm_decode(bytes.fromhex(sends(jasmin_api)[0]["hex-content"])) == jasmin_config.replies.help


def test_send_500_keeps_the_reply_then_fails_it_then_replay_delivers(
    jasmin_config: Config,
    store: Store,
    running_client: Callable[[Config], TestClient],
    jasmin_api: ProviderApi,
    admin_token: str,
) -> None:
    jasmin_api.route(ANY, "/send", Canned(status=500, body=b'Error "Cannot send submit_sm"'))
    with running_client(jasmin_config) as client:
        client.post(WEBHOOK, content=payload("latin1.form"), headers=FORM)
        [failed] = eventually(lambda: stored_replies(store, status="failed"), "the reply to fail")
        assert failed.attempts == jasmin_config.worker.max_attempts == len(sends(jasmin_api))
        jasmin_api.route(ANY, "/send", SUCCESS)
        replay = client.post(f"/api/v1/failed/outbox-{failed.id}/replay", headers=bearer(admin_token))
        assert replay.status_code == 200
        eventually(lambda: stored_replies(store, status="done"), "the replayed reply to be sent")
    assert len(sends(jasmin_api)) == jasmin_config.worker.max_attempts + 1
    assert len(complaint_records(store)) == 1


def test_wrong_secret_stores_nothing(
    jasmin_config: Config, store: Store, running_client: Callable[[Config], TestClient]
) -> None:
    with running_client(jasmin_config) as client:
        response = client.post("/webhooks/jasmin?secret=nope", content=payload("gsm_text.form"), headers=FORM)
    assert response.status_code == 403
    assert inbox_count(store) == 0
