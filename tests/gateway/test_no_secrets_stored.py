"""Secrets (signatures, shared secrets and tokens in query strings) never land in an inbox row's ``headers`` or
``meta``, whichever channel the message came by. The test walks ``gateway/registry.py``'s CHANNELS: a channel
added later fails here until it has a delivery in ``DELIVER`` below."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from smpplib import smpp
from sqlalchemy import select

from channels import csv_import
from channels.email import mime
from channels.smpp.concat import STATUS_OK, Inbound
from channels.whatsapp.edge import sign as meta_sign
from channels.x.edge import sign as x_sign
from gateway.app import Gateway, create_app
from gateway.config import Config
from gateway.redact import REDACTED
from gateway.registry import CHANNELS
from sinks.store.db import Store
from sinks.store.models import InboxMessage
from tests.channels.test_twilio import sign as twilio_sign
from tests.channels.test_x import OUR_ID as X_ACCOUNT
from tests.conftest import bearer

SECRET = "planted-s3cret-0f-the-test"
PUBLIC_URL = "http://gateway.test"
PAYLOADS = Path(__file__).parents[1] / "payloads"
LINK = f"https://contoh.id/reset?token={SECRET}&id=7"  # a token in a query string, as mail and forms carry them


@dataclass
class Harness:
    client: TestClient
    gateway: Gateway
    agent_token: str

    def accept(self, item: object) -> None:
        asyncio.run(self.gateway.inbox.accept(item))  # type: ignore[arg-type]


def _manual(h: Harness) -> None:
    body = {"body": f"Pungli di loket, bukti: {LINK}", "source": "phone"}
    answer = h.client.post("/api/v1/complaints", json=body, headers={**bearer(h.agent_token), "Idempotency-Key": "s1"})
    assert answer.status_code in (201, 202)


def _csv(h: Harness) -> None:
    data = f"isi,sumber\nJalan rusak {LINK},phone\n".encode()
    parsed = csv_import.read_csv(data, h.gateway.config.categories)
    h.accept(csv_import.inbox_item(parsed.rows[0], "siti", f"impor.csv?token={SECRET}"))


def _twilio(h: Harness) -> None:
    body = urlencode({"MessageSid": "SM" + "1" * 32, "From": "+6281234567890", "To": "+1415", "Body": "LAPOR x"})
    signature = twilio_sign(PUBLIC_URL + "/webhooks/twilio", body.encode(), SECRET)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    assert h.client.post("/webhooks/twilio", content=body, headers=headers).status_code == 200


def _secret_form(path: str) -> Callable[[Harness], None]:
    def deliver(h: Harness) -> None:
        query = urlencode({"secret": SECRET, "id": "m-1", "from": "+6281234567890", "to": "1708", "text": "LAPOR x"})
        assert h.client.post(f"{path}?{query}").status_code == 200

    return deliver


def _jasmin(h: Harness) -> None:
    form = {"secret": SECRET, "id": "j-1", "from": "6281234567890", "to": "1708", "content": "LAPOR x", "coding": "0"}
    assert h.client.post("/webhooks/jasmin", data=form).status_code == 200


def _whatsapp(h: Harness) -> None:
    raw = (PAYLOADS / "meta" / "text.json").read_bytes()
    headers = {"X-Hub-Signature-256": meta_sign(raw, SECRET), "Content-Type": "application/json"}
    assert h.client.post("/webhooks/whatsapp", content=raw, headers=headers).status_code == 200


def _meta_product(product: str) -> Callable[[Harness], None]:
    def deliver(h: Harness) -> None:
        raw = (PAYLOADS / product / "text.json").read_bytes()
        headers = {"X-Hub-Signature-256": meta_sign(raw, SECRET), "Content-Type": "application/json"}
        assert h.client.post(f"/webhooks/{product}", content=raw, headers=headers).status_code == 200

    return deliver


def _line(h: Harness) -> None:
    raw = (PAYLOADS / "line" / "text.json").read_bytes()
    signature = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()).decode()
    headers = {"X-Line-Signature": signature, "Content-Type": "application/json"}
    assert h.client.post("/webhooks/line", content=raw, headers=headers).status_code == 200


def _x(h: Harness) -> None:
    raw = (PAYLOADS / "x" / "dm_text.json").read_bytes()
    headers = {"x-twitter-webhooks-signature": x_sign(raw, SECRET), "Content-Type": "application/json"}
    assert h.client.post("/webhooks/x", content=raw, headers=headers).status_code == 200


def _web(h: Harness) -> None:
    report = {"body": f"Lampu PJU mati, lihat {LINK}", "consent": True, "reporter": {"anonymity": "anonymous"}}
    headers = {"X-Api-Key": SECRET, "Idempotency-Key": "app-1"}
    answer = h.client.post("/api/v1/public/reports", json=report, headers=headers)
    assert answer.status_code in (201, 202), answer.text


def _telegram(h: Harness) -> None:
    update = {
        "update_id": 77,
        "message": {"message_id": 1, "date": 1764000000, "chat": {"id": 5, "type": "private"}, "text": LINK},
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    assert h.client.post("/webhooks/telegram", content=json.dumps(update), headers=headers).status_code == 200


def _mail(provider: str, meta: dict[str, object]) -> Callable[[Harness], None]:
    def deliver(h: Harness) -> None:
        mail = EmailMessage()
        mail["From"] = "warga@contoh.id"
        mail["To"] = "lapor@lapor.localhost"
        mail["Subject"] = f"Lihat {LINK}"
        mail["Message-ID"] = f"<{provider}-1@contoh.id>"
        mail.set_content("Lampu jalan mati.")
        h.accept(mime.inbox_item(mail.as_bytes(), meta, provider))

    return deliver


def _smpp(h: Harness) -> None:
    class Sequences:
        sequence = 0

        def next_sequence(self) -> int:
            self.sequence += 1
            return self.sequence

    pdu = smpp.make_pdu(
        "deliver_sm",
        client=Sequences(),
        source_addr="6281234567890",
        destination_addr="1708",
        short_message=f"LAPOR {LINK}".encode(),
    )

    async def deliver() -> int:
        async with httpx.AsyncClient() as http:
            inbound = Inbound(h.gateway.make_context(http), "gsm0338", 60.0)
            return await inbound.handle(pdu.generate())

    assert asyncio.run(deliver()) == STATUS_OK


# One delivery per channel, through its edge where it has an HTTP one, through its item builder otherwise.
DELIVER: dict[str, Callable[[Harness], None]] = {
    "manual": _manual,
    "csv": _csv,
    "twilio": _twilio,
    "kannel": _secret_form("/webhooks/kannel"),
    "jasmin": _jasmin,
    "smpp": _smpp,
    "smtp": _mail("smtp", {"mail_from": "warga@contoh.id", "rcpt_tos": ["lapor@lapor.localhost"], "peer": "1.2.3.4"}),
    "imap": _mail("imap", {"uid": 3, "uidvalidity": 1, "folder": "INBOX", "url": f"imaps://x/INBOX?auth={SECRET}"}),
    "whatsapp": _whatsapp,
    "telegram": _telegram,
    "messenger": _meta_product("messenger"),
    "instagram": _meta_product("instagram"),
    "web": _web,
    "line": _line,
    "x": _x,
}


def _config(make_config: Callable[..., Config]) -> Config:
    return make_config(
        http={"public_url": PUBLIC_URL},
        channels={
            "smtp": {"enabled": False},
            "twilio": {"enabled": True, "account_sid": "AC" + "0" * 32, "auth_token": SECRET},
            "kannel": {"enabled": True, "secret": SECRET, "password": SECRET, "sendsms_url": "http://127.0.0.1:1/"},
            "jasmin": {"enabled": True, "secret": SECRET, "password": SECRET, "send_url": "http://127.0.0.1:1/"},
            "whatsapp": {
                "enabled": True,
                "app_secret": SECRET,
                "verify_token": SECRET,
                "access_token": SECRET,
                "phone_number_id": "1",
            },
            "telegram": {"enabled": True, "token": f"123:{SECRET}", "secret_token": SECRET},
            **{
                product: {"enabled": True, "app_secret": SECRET, "verify_token": SECRET, "access_token": SECRET}
                for product in ("messenger", "instagram")
            },
            "line": {"enabled": True, "channel_secret": SECRET, "channel_access_token": SECRET},
            "x": {"enabled": True, "consumer_secret": SECRET, "access_token": SECRET, "user_id": X_ACCOUNT},
            "web": {"enabled": True},
        },
        public_api={"keys": {"android": SECRET}},
    )


@pytest.mark.parametrize("name", list(CHANNELS))
def test_no_channel_stores_a_secret_in_headers_or_meta(
    name: str, make_config: Callable[..., Config], store: Store, agent_token: str
) -> None:
    assert name in DELIVER, f"channel {name!r} has no delivery in DELIVER: add one so its rows are checked too"
    gateway = Gateway(_config(make_config), store)
    with TestClient(create_app(gateway)) as client:
        DELIVER[name](Harness(client, gateway, agent_token))
    with store.read() as session:
        rows = list(session.execute(select(InboxMessage)).scalars())
    assert rows, f"{name}: the delivery made no inbox row"
    for row in rows:
        kept = json.dumps({"headers": row.headers, "meta": row.meta}, ensure_ascii=False)
        assert SECRET not in kept, f"{name}: a secret in the stored row: {kept}"
        assert "sha256=" not in kept and "X-Twilio-Signature" not in kept.replace(REDACTED, ""), kept
