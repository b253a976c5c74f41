"""A PostgreSQL that goes away and comes back: every edge says "try later", the log says so once, and the
gateway serves again without a restart. The cluster is our own (initdb + pg_ctl), so we can stop it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from channels.smpp.concat import STATUS_OK, STATUS_RETRY
from gateway.app import Gateway, create_app
from gateway.auth import create_token
from normalizer.errors import TryLater
from sinks.store.db import open_store, upgrade
from sinks.store.health import STORE_RECOVERED, STORE_UNAVAILABLE
from tests.channels.smpp_rig import mo, smpp_block
from tests.channels.smpp_smsc import FakeSmsc
from tests.conftest import bearer, build_config
from tests.support.e2e import eventually
from tests.support.pg_cluster import PrivateCluster, private_cluster, remove
from tests.support.server import free_port
from tests.web.support import PASSWORD, add_staff, csrf_of

pytestmark = pytest.mark.slow

KANNEL_SECRET = "outage-secret"
TELEGRAM_TOKEN = "123456789:AAoutage"
TELEGRAM_SECRET = "outage-telegram"
UPDATE = b'{"update_id": 9001, "message": {"message_id": 1, "date": 1764000000, "chat": {"id": 42, "type": "private"},'
UPDATE += b' "from": {"id": 42, "is_bot": false, "first_name": "Budi"}, "text": "LAPOR lampu jalan mati"}}'

LINE_SECRET = "outage-line-secret"
LINE_EVENT = (Path(__file__).parents[1] / "payloads" / "line" / "text.json").read_bytes()
LINE_HEADERS = {
    "X-Line-Signature": base64.b64encode(hmac.new(LINE_SECRET.encode(), LINE_EVENT, hashlib.sha256).digest()).decode(),
    "Content-Type": "application/json",
}
HTTP_EDGES = ("api_post", "api_token_check", "web_page", "kannel_webhook", "telegram_webhook", "line_webhook", "readyz")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    cluster = private_cluster()
    try:
        yield cluster
    finally:
        remove(cluster)


def _mail(n: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "warga@contoh.id"
    mail["To"] = "lapor@lapor.localhost"
    mail["Subject"] = "Lampu jalan mati"
    mail["Message-ID"] = f"<outage-{n}@contoh.id>"
    mail.set_content("Lampu jalan di Jl. Merdeka mati sejak kemarin.")
    return mail


def _smtp_code(port: int, n: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        try:
            smtp.send_message(_mail(n))
        except smtplib.SMTPDataError as exc:
            return int(exc.smtp_code)
    return 250


def _edges(client: TestClient, agent: str, fresh_agent: str, smsc: FakeSmsc, smtp_port: int, n: int) -> dict[str, Any]:
    """One delivery or request through every kind of edge; what each answered."""
    entry = {"body": "PJU mati di Jl. Merdeka", "source": "phone"}
    key = {"Idempotency-Key": f"outage-{n}"}
    tg_headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
    update = UPDATE.replace(b"9001", str(9001 + n).encode())
    kannel = f"/webhooks/kannel?secret={KANNEL_SECRET}&id=k{n}&from=%2B6281234567890&to=1708&text=LAPOR+jalan+rusak"
    return {
        "api_post": client.post("/api/v1/complaints", json=entry, headers={**bearer(agent), **key}),
        "api_token_check": client.get("/api/v1/complaints", headers=bearer(fresh_agent)),
        "web_page": client.get("/pengaduan", headers={"Accept": "text/html"}),
        "kannel_webhook": client.post(kannel),
        "telegram_webhook": client.post("/webhooks/telegram", content=update, headers=tg_headers),
        "line_webhook": client.post("/webhooks/line", content=LINE_EVENT, headers=LINE_HEADERS),
        "readyz": client.get("/readyz"),
        "smtp": _smtp_code(smtp_port, n),
        "smpp": smsc.wait_response(smsc.deliver(**mo(f"LAPOR got nomor {n} di Jl. Merdeka"))),
    }


def test_every_edge_says_try_later_while_postgres_is_down_and_serves_again_when_it_is_back(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    url = cluster.schema_url(f"t_{uuid.uuid4().hex[:12]}")
    store = open_store(url)
    upgrade(store)
    add_staff(store)
    agent = create_token(store, "siti", "agent")
    fresh_agent = create_token(store, "andi", "agent")  # never used before the outage: its check needs the store
    smtp_port = free_port()
    with FakeSmsc() as smsc:
        config = build_config(
            url,
            tmp_path / "data",
            channels={
                "kannel": {"enabled": True, "secret": KANNEL_SECRET, "sendsms_url": "http://127.0.0.1:1/cgi-bin"},
                "telegram": {"enabled": True, "token": TELEGRAM_TOKEN, "secret_token": TELEGRAM_SECRET},
                "line": {"enabled": True, "channel_secret": LINE_SECRET, "channel_access_token": LINE_SECRET},
                "smtp": {"enabled": True, "port": smtp_port},
                "smpp": smpp_block(smsc),
            },
        )
        with TestClient(create_app(Gateway(config, store))) as client:
            page = client.get("/login")
            form = {"username": "siti", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/"}
            assert client.post("/login", data=form, follow_redirects=False).status_code == 303
            smsc.wait_bound()
            assert (
                client.post(
                    "/api/v1/complaints", json={"body": "warm-up", "source": "phone"}, headers=bearer(agent)
                ).status_code
                == 201
            )

            with capture_logs() as outage_logs:
                cluster.stop()
                down = _edges(client, agent, fresh_agent, smsc, smtp_port, 1)
                again = _edges(client, agent, fresh_agent, smsc, smtp_port, 2)
                cluster.start()
                eventually(lambda: client.get("/readyz").status_code == 200, "readyz once PostgreSQL is back")
                up = _edges(client, agent, fresh_agent, smsc, smtp_port, 3)
                eventually(lambda: any(entry["event"] == STORE_RECOVERED for entry in outage_logs), "the recovery line")

    for answers in (down, again):
        for edge in HTTP_EDGES:
            response = answers[edge]
            assert response.status_code == 503, (edge, response.status_code, response.text)
            assert response.headers["Retry-After"] == str(TryLater.RETRY_AFTER_S), edge
        assert answers["api_post"].json() == {"detail": TryLater.HTTP_DETAIL}
        assert answers["api_token_check"].json() == {"detail": TryLater.HTTP_DETAIL}
        assert "text/html" in answers["web_page"].headers["content-type"]
        assert "coba lagi" in answers["web_page"].text
        assert answers["smtp"] == 451
        assert answers["smpp"] == STATUS_RETRY == 0x64

    assert up["api_post"].status_code == 201
    assert up["api_token_check"].status_code == 200
    assert up["web_page"].status_code == 200
    assert [up[edge].status_code for edge in HTTP_EDGES if edge.endswith("webhook") or edge == "readyz"] == [200] * 4
    assert (up["smtp"], up["smpp"]) == (250, STATUS_OK)

    events = [entry["event"] for entry in outage_logs]
    assert events.count(STORE_UNAVAILABLE) == 1
    assert events.count(STORE_RECOVERED) == 1
    [recovered] = [entry for entry in outage_logs if entry["event"] == STORE_RECOVERED]
    assert recovered["refused_requests"] >= 12  # six HTTP refusals (readyz is a probe, not a request), twice
    assert recovered["refused_deliveries"] >= 4  # SMTP and SMPP went through the inbox and were refused
    # Not one traceback for the whole outage.
    assert not [entry for entry in outage_logs if entry.get("exc_info") or entry.get("log_level") == "exception"]
    store.dispose()
