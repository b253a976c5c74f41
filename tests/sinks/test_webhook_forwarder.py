"""The signed webhook forwarder against a local receiver that checks signatures with standardwebhooks itself."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from channels.base import InboxItem
from gateway import agency_sync, lifecycle
from gateway.app import Gateway
from gateway.config import Config
from gateway.replay import parse_ref, replay
from sinks.forwarders.webhook import retry_after_seconds
from sinks.store.db import Store
from sinks.store.models import DONE, FAILED, PENDING
from tests.support.complaints import add_complaint, outbox_for
from tests.support.e2e import stored_outbox
from tests.support.provider_api import Canned, ProviderApi, Recorded

SECRET = "whsec_" + base64.b64encode(b"lapor-gateway-test-secret-32byte").decode()
ADMIN = lifecycle.Actor("staff", "rina", admin=True)


@pytest.fixture
def receiver() -> Iterator[ProviderApi]:
    with ProviderApi(default=Canned.json({})) as api:
        yield api


@pytest.fixture
def gateway(make_config: Callable[..., Config], store: Store, receiver: ProviderApi) -> Iterator[Gateway]:
    config = make_config(
        sinks=[{"name": "pusat", "url": f"{receiver.url}/hooks", "secret": SECRET}],
        agencies={"dpupr": {"name": "Dinas PUPR", "categories": ["jalan"]}},
    )
    gateway = Gateway(config, store)
    gateway.inbox.start()
    yield gateway
    gateway.inbox.stop()


def run(gateway: Gateway) -> None:
    asyncio.run(gateway.worker.run_until_idle())


def verified(call: Recorded) -> dict[str, object]:
    """What the receiver accepts: standardwebhooks' own check of the signature and timestamp."""
    payload: dict[str, object] = Webhook(SECRET).verify(call.body, call.headers)
    return payload


def test_a_new_complaint_and_its_status_change_arrive_signed(gateway: Gateway, receiver: ProviderApi) -> None:
    entry = {"body": "Jalan berlubang di Jl. Merdeka", "source": "phone", "category": "jalan"}
    item = InboxItem(channel="manual", provider="callcenter", external_id="k1", raw=json.dumps(entry).encode())
    gateway.inbox.accept_blocking(item)
    run(gateway)
    (created,) = receiver.requests
    body = verified(created)
    assert body["type"] == "complaint.created"
    tracking_id = body["data"]["record"]["tracking_id"]  # type: ignore[index]
    assert created.headers["webhook-id"] == f"evt_created_{tracking_id}"
    assert abs(int(created.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 300

    applied = lifecycle.transition(gateway.store, gateway.config, tracking_id, lifecycle.Change(to="verified"), ADMIN)
    run(gateway)
    changed = receiver.requests[1]
    body = verified(changed)
    assert body["type"] == "complaint.status_changed"
    assert changed.headers["webhook-id"] == applied.event["id"]
    assert body["data"]["event"]["to"] == "verified"  # type: ignore[index]
    assert "internal_note" not in body["data"]["event"]  # type: ignore[operator]
    assert body["data"]["record"]["status"] == "verified"  # type: ignore[index]


def test_a_failing_receiver_is_retried_then_failed_then_replayed_into_exactly_one_delivery(
    gateway: Gateway, receiver: ProviderApi
) -> None:
    tracking_id = add_complaint(gateway.store)
    receiver.route("POST", "/hooks", Canned(status=500, body=b"boom"))
    event = lifecycle.transition(gateway.store, gateway.config, tracking_id, lifecycle.Change(to="verified"), ADMIN)
    run(gateway)
    (row,) = outbox_for(gateway.store, tracking_id, "forward")
    assert (row.status, row.attempts) == (FAILED, gateway.config.worker.max_attempts)
    assert "500" in (row.last_error or "")

    receiver.route("POST", "/hooks", Canned.json({}))
    assert replay(gateway.store, parse_ref(f"outbox-{row.id}"))
    run(gateway)
    run(gateway)  # nothing more goes out once it is delivered
    ids = [call.headers["webhook-id"] for call in receiver.requests]
    assert ids == [event.event["id"]] * (gateway.config.worker.max_attempts + 1)  # the same id on every try
    assert all(verified(call) for call in receiver.requests)
    assert outbox_for(gateway.store, tracking_id, "forward")[0].status == DONE


def test_retry_after_is_honoured(gateway: Gateway, receiver: ProviderApi) -> None:
    tracking_id = add_complaint(gateway.store)
    receiver.route("POST", "/hooks", Canned(status=429, headers={"Retry-After": "120"}))
    lifecycle.transition(gateway.store, gateway.config, tracking_id, lifecycle.Change(to="verified"), ADMIN)
    run(gateway)
    (row,) = outbox_for(gateway.store, tracking_id, "forward")
    assert (row.status, row.attempts) == (PENDING, 1)  # one try: the next is not due for two minutes
    assert row.next_attempt_at >= datetime.now(UTC) + timedelta(seconds=100)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", datetime(2015, 10, 21, 7, 27, tzinfo=UTC)) == 60


def test_410_disables_the_sink_until_it_is_enabled(gateway: Gateway, receiver: ProviderApi) -> None:
    receiver.route("POST", "/hooks", Canned(status=410, body=b"endpoint removed"))
    first, second = add_complaint(gateway.store), add_complaint(gateway.store)
    lifecycle.transition(gateway.store, gateway.config, first, lifecycle.Change(to="verified"), ADMIN)
    run(gateway)
    assert agency_sync.disabled(gateway.store, "pusat") is not None
    lifecycle.transition(gateway.store, gateway.config, second, lifecycle.Change(to="verified"), ADMIN)
    run(gateway)
    assert len(receiver.requests) == 1  # nothing more is sent to a sink that is gone
    (row,) = outbox_for(gateway.store, second, "forward")
    assert (row.status, row.error_type) == (FAILED, "SinkDisabled")
    assert "sinks enable pusat" in (row.last_error or "")

    receiver.route("POST", "/hooks", Canned.json({}))
    assert agency_sync.enable(gateway.store, "pusat")
    assert replay(gateway.store, parse_ref(f"outbox-{row.id}"))
    run(gateway)
    assert outbox_for(gateway.store, second, "forward")[0].status == DONE


def test_other_4xx_go_to_the_failed_list_with_the_answer(gateway: Gateway, receiver: ProviderApi) -> None:
    receiver.route("POST", "/hooks", Canned(status=400, body=b"missing field foo"))
    tracking_id = add_complaint(gateway.store)
    lifecycle.transition(gateway.store, gateway.config, tracking_id, lifecycle.Change(to="verified"), ADMIN)
    run(gateway)
    (row,) = outbox_for(gateway.store, tracking_id, "forward")
    assert (row.status, row.attempts, row.error_type) == (FAILED, 1, "ProviderRejected")
    assert "missing field foo" in (row.last_error or "")
    assert len(stored_outbox(gateway.store, kind="forward")) == 1


def test_an_agency_webhook_hears_only_of_its_own_complaints(
    make_config: Callable[..., Config], store: Store, receiver: ProviderApi
) -> None:
    config = make_config(
        sinks=[
            {"name": "pusat", "url": f"{receiver.url}/feed", "secret": SECRET},
            {"name": "pupr", "url": f"{receiver.url}/pupr", "secret": SECRET},
        ],
        agencies={
            "dpupr": {"name": "Dinas PUPR", "categories": ["jalan"], "forward": "pupr"},
            "dlh": {"name": "DLH", "categories": ["sampah"]},
        },
    )
    gateway = Gateway(config, store)
    ours = add_complaint(store, status="verified")
    theirs = add_complaint(store, status="verified", category="sampah")
    lifecycle.transition(store, config, ours, lifecycle.Change(to="forwarded"), ADMIN)
    lifecycle.transition(store, config, theirs, lifecycle.Change(to="forwarded"), ADMIN)
    run(gateway)
    to_agency = [verified(call)["data"]["record"]["tracking_id"] for call in receiver.seen("POST", "/pupr")]  # type: ignore[index]
    to_feed = sorted(verified(call)["data"]["record"]["tracking_id"] for call in receiver.seen("POST", "/feed"))  # type: ignore[index]
    assert to_agency == [ours]
    assert to_feed == sorted([ours, theirs])
