"""Jasmin: SMS from an operator's SMSC through Jasmin's HTTP MO connector.

Jasmin calls ``/webhooks/jasmin?secret=…`` (POST form, or GET when the
connector says so) with ``id, from, to, origin-connector, priority, coding,
validity, content, binary``. ``content`` is the raw octets squeezed into a
string and is wrong for anything but Latin text, so the text is decoded from
``binary`` (hex) by ``coding``. Jasmin re-sends until the body is exactly
``ACK/Jasmin``, which is answered only after the commit. Replies go out
through Jasmin's HTTP ``/send``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import APIRouter, Response
from pydantic import model_validator

from channels.base import ChannelAdapter, ChannelContext, Reply, Sent
from channels.gsm import DC_SMSC_DEFAULT, DC_UCS2, decode_data_coding, encode_default_alphabet, fits_default_alphabet
from channels.sms_http import (
    Form,
    SecretFormSettings,
    call_provider,
    data_coding_of,
    fallback_external_id,
    login_and_addresses,
    secret_form_router,
    sms_message,
)
from normalizer.errors import IgnoredMessage, PayloadError
from normalizer.types import ChannelMessage

PROVIDER = "jasmin"
WEBHOOK_PATH = "/webhooks/jasmin"
ACK = b"ACK/Jasmin"
# Jasmin's /send answers ``Success "<message uuid>"``.
_SUCCESS = re.compile(r'^Success\s+"([^"]+)"')

REJECTED = "jasmin.rejected"


class JasminSettings(SecretFormSettings):
    registry_name = "jasmin"

    send_url: str = ""

    @model_validator(mode="after")
    def _send_url_when_enabled(self) -> JasminSettings:
        # Without it every acknowledgement would sit in the outbox and fail: stop start-up instead.
        if self.enabled and not self.send_url:
            raise ValueError(
                "channels.jasmin.send_url is empty — set it to Jasmin's HTTP API, e.g. http://jasmin:1401/send"
            )
        return self


def _is_receipt(form: Form) -> bool:
    # A DLR posted to the MO URL carries message_status and no message text.
    return "message_status" in form and "content" not in form and "binary" not in form


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    form = Form.parse(raw)
    message_id = form.get("id") or fallback_external_id(form, "from", "to", "binary", "content")
    return f"{message_id}:{form.get('message_status')}" if _is_receipt(form) else message_id


def message_bytes(form: Form) -> bytes:
    """The short message's octets: from the hex ``binary`` when present, else ``content`` as sent."""
    binary = form.get("binary")
    if binary:
        try:
            return bytes.fromhex(binary.strip())
        except ValueError as exc:
            raise PayloadError("jasmin: binary is not hex") from exc
    return form.get_bytes("content") or b""


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    """The MO message; data_coding 0 is read with the alphabet the edge recorded in ``meta`` (GSM 03.38 if none)."""
    form = Form.parse(raw)
    if _is_receipt(form):
        raise IgnoredMessage(f"jasmin delivery receipt ({form.get('message_status')})")
    sender = form.get("from")
    if not sender:
        raise PayloadError("jasmin: request has no from")
    octets = message_bytes(form)
    coding = data_coding_of(form.get_bytes("coding")) or DC_SMSC_DEFAULT
    decoded = decode_data_coding(octets, coding, meta.get("default_alphabet") or "gsm0338")
    # Binary data codings carry no text; Latin-1 shows every octet rather than dropping the message.
    text = decoded if decoded is not None else octets.decode("latin-1")
    return [
        sms_message(
            provider=PROVIDER,
            external_id=external_id(raw, meta),
            sender=sender,
            text=text,
            our_number=form.get("to"),
        )
    ]


def destination(number: str) -> str:
    """``to`` as Jasmin wants it: digits only. Jasmin copies ``to`` into ``destination_addr``
    unchanged and takes TON/NPI from the connector (``dst_ton 1``, ``dst_npi 1``: international),
    so a ``+`` would reach the SMSC, which may refuse it."""
    return number[1:] if number.startswith("+") else number


def send_form(reply: Reply, settings: JasminSettings) -> dict[str, str]:
    """The /send parameters, always as ``hex-content`` so the octets are exactly ours.

    Coding 0 carries the text in the SMSC's default alphabet (GSM 03.38 septets,
    or ASCII/Latin-1 bytes) when it fits; anything else goes as UCS-2, coding 8.
    """
    form = dict(login_and_addresses(reply, settings, to=destination(reply.to)))
    if fits_default_alphabet(reply.text, settings.default_alphabet):
        form["coding"] = str(DC_SMSC_DEFAULT)
        form["hex-content"] = encode_default_alphabet(reply.text, settings.default_alphabet).hex()
    else:
        form["coding"] = str(DC_UCS2)
        form["hex-content"] = reply.text.encode("utf-16-be").hex()
    return form


async def send(reply: Reply, settings: JasminSettings, client: httpx.AsyncClient) -> Sent:
    response = await call_provider(
        client, "POST", settings.send_url, provider=PROVIDER, data=send_form(reply, settings)
    )
    match = _SUCCESS.match(response.text.strip())
    return Sent(provider_message_id=match.group(1) if match else None)


def router(settings: JasminSettings, ctx: ChannelContext) -> APIRouter:
    return secret_form_router(
        WEBHOOK_PATH,
        provider=PROVIDER,
        secret=settings.secret,
        ctx=ctx,
        external_id=external_id,
        rejected_event=REJECTED,
        meta={"default_alphabet": settings.default_alphabet},
        # Jasmin re-sends until the body is exactly ACK/Jasmin.
        stored=lambda: Response(content=ACK, media_type="text/plain"),
        # Anything but ACK/Jasmin makes Jasmin deliver again later.
        unavailable=lambda: Response(status_code=503, content=b"store unavailable", media_type="text/plain"),
    )


ADAPTER = ChannelAdapter(
    name="jasmin",
    provider=PROVIDER,
    settings=JasminSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    router=router,
)
