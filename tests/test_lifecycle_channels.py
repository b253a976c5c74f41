"""Status changes reach the citizen through the real channel senders: SMS through Twilio, Telegram through
the Bot API (each a local stand-in), on the number or chat the complaint came from; STATUS answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi.testclient import TestClient

from gateway import lifecycle
from gateway.config import Config
from sinks.store.db import Store
from tests.channels.telegram_fakes import TOKEN, sent_message
from tests.channels.test_telegram import SECRET
from tests.channels.test_telegram import payload as telegram_payload
from tests.channels.test_twilio import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, sign
from tests.channels.test_twilio_gateway import MESSAGES_PATH, SENT
from tests.channels.test_twilio_gateway import payload as twilio_payload
from tests.support.e2e import eventually, stored_complaints
from tests.support.provider_api import ANY, Canned, ProviderApi

ADMIN = lifecycle.Actor("staff", "rina", admin=True)
AGENCIES = {"dpupr": {"name": "Dinas PUPR"}}


def advance(client: TestClient, config: Config, store: Store, tracking_id: str) -> None:
    """An admin forwards the complaint; the agency answers it."""
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    for change in (
        lifecycle.Change(to="verified"),
        lifecycle.Change(to="forwarded", agency="dpupr"),
        lifecycle.Change(to="resolved", public_note="Saluran sudah dibersihkan."),
    ):
        lifecycle.transition(store, config, tracking_id, change, ADMIN)
    gateway.worker.wake.set()


def test_sms_through_twilio(
    make_config: Callable[..., Config], store: Store, running_client: Callable[[Config], TestClient]
) -> None:
    with ProviderApi() as twilio:
        twilio.route(ANY, MESSAGES_PATH, SENT)
        twilio_block = {"enabled": True, "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base": twilio.url}
        config = make_config(http={"public_url": PUBLIC_URL}, channels={"twilio": twilio_block}, agencies=AGENCIES)

        def sent() -> list[dict[str, str]]:
            return [dict(parse_qsl(c.body.decode())) for c in twilio.requests if c.path == MESSAGES_PATH]

        def post(body: bytes) -> None:
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sign(PUBLIC_URL + "/webhooks/twilio", body),
            }
            assert client.post("/webhooks/twilio", content=body, headers=headers).status_code == 200

        with running_client(config) as client:
            post(twilio_payload("sms_basic.form"))
            (stored,) = eventually(lambda: stored_complaints(store))
            eventually(lambda: len(sent()) == 1, "the acknowledgement")
            advance(client, config, store, stored.tracking_id)
            eventually(lambda: len(sent()) == 3, "the forwarded and resolved messages")
            status = (
                twilio_payload("sms_basic.form")
                .replace(b"Body=LAPOR+Jalan", f"Body=STATUS+{stored.tracking_id}+x".encode())
                .replace(b"SM5f0e9a1c2b3d4e5f6a7b8c9d0e1f2a3b", b"SM000000000000000000000000000status")
            )
            post(status)
            eventually(lambda: len(sent()) == 4, "the STATUS answer")
    texts = [(m["To"], m["From"], m["Body"]) for m in sent()]
    assert {(to, sender) for to, sender, _ in texts} == {("+6281234567890", "+14155550123")}
    # Queued a moment apart, the two still arrive in the order they happened.
    assert texts[1][2] == f"Laporan {stored.tracking_id} telah diteruskan ke Dinas PUPR untuk ditindaklanjuti."
    assert "Saluran sudah dibersihkan." in texts[2][2]
    assert texts[3][2].startswith(f"Status laporan {stored.tracking_id}: selesai. Instansi: Dinas PUPR.")


def test_telegram_through_the_bot_api(
    make_config: Callable[..., Config], store: Store, running_client: Callable[[Config], TestClient]
) -> None:
    send = f"/bot{TOKEN}/sendMessage"
    with ProviderApi(default=Canned.json({"error": "no route"}, status=404)) as bot:
        bot.route("POST", send, Canned.json({"ok": True, "result": sent_message(523901234, 117, "ok")}))
        block = {"enabled": True, "token": TOKEN, "secret_token": SECRET, "api_base": bot.url}
        config = make_config(channels={"telegram": block}, agencies=AGENCIES)

        def sent() -> list[dict[str, Any]]:
            return [r.form() for r in bot.seen("POST", send)]

        with running_client(config) as client:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
            assert (
                client.post("/webhooks/telegram", content=telegram_payload("text.json"), headers=headers).status_code
                == 200
            )
            (stored,) = eventually(lambda: stored_complaints(store))
            eventually(lambda: len(sent()) == 1, "the acknowledgement")
            advance(client, config, store, stored.tracking_id)
            eventually(lambda: len(sent()) == 3, "the forwarded and resolved messages")
            update = json.loads(telegram_payload("text.json"))
            update["update_id"] += 1
            update["message"]["message_id"] += 1
            update["message"]["text"] = f"/status {stored.tracking_id}"
            assert client.post("/webhooks/telegram", content=json.dumps(update), headers=headers).status_code == 200
            eventually(lambda: len(sent()) == 4, "the STATUS answer")
    assert {m["chat_id"] for m in sent()} == {"523901234"}
    # Queued a moment apart, the two still arrive in the order they happened.
    assert sent()[1]["text"] == f"Laporan {stored.tracking_id} telah diteruskan ke Dinas PUPR untuk ditindaklanjuti."
    assert sent()[2]["text"].startswith(f"Laporan {stored.tracking_id} telah diselesaikan oleh Dinas PUPR")
    assert "Tanggapan: Saluran sudah dibersihkan." in sent()[3]["text"]
