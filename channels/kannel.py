"""Kannel: SMS from an operator's SMSC through Kannel's smsbox.

An smsbox ``sms-service`` calls ``/webhooks/kannel`` once per MO message with
``secret, id=%I, from=%p, to=%P, ts=%T, coding=%c, charset=%C, text=%a``.
With ``coding=2`` the text is UTF-16BE octets behind the percent escapes, so
the form is decoded to bytes first and the text by its charset afterwards.
Kannel takes any HTTP answer as "delivered" and would text a non-empty body
back to the citizen: the answer is an empty 200, given after the commit.
Replies go out through Kannel's ``sendsms`` HTTP interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Response

from channels.base import ChannelAdapter, ChannelContext, Reply, Sent
from channels.gsm import fits_default_alphabet
from channels.sms_http import (
    Form,
    SecretFormSettings,
    call_provider,
    decode_with_charset,
    fallback_external_id,
    login_and_addresses,
    parse_int,
    secret_form_router,
    sms_message,
)
from normalizer.errors import PayloadError
from normalizer.types import ChannelMessage

PROVIDER = "kannel"
WEBHOOK_PATH = "/webhooks/kannel"
# Kannel's message coding (%c): 0 = 7-bit text, 1 = 8-bit data, 2 = UCS-2.
CODING_8BIT = 1
CODING_UCS2 = 2

REJECTED = "kannel.rejected"


class KannelSettings(SecretFormSettings):
    registry_name = "kannel"

    sendsms_url: str = ""


def decode_text(data: bytes, coding: int | None, charset: str | None) -> str:
    """The message text from its octets: by the declared charset, else by the coding; never assumed UTF-8."""
    if charset:
        decoded = decode_with_charset(data, charset)
        if decoded is not None:
            return decoded
    if coding == CODING_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if coding == CODING_8BIT:
        return data.decode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    form = Form.parse(raw)
    return form.get("id") or fallback_external_id(form, "from", "to", "ts", "text")


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    form = Form.parse(raw)
    sender = form.get("from")
    if not sender:
        raise PayloadError("kannel: request has no from (%p)")
    text = decode_text(form.get_bytes("text") or b"", parse_int(form.get("coding")), form.get("charset"))
    return [
        sms_message(
            provider=PROVIDER,
            external_id=external_id(raw, meta),
            sender=sender,
            text=text,
            our_number=form.get("to"),
        )
    ]


def sendsms_query(reply: Reply, settings: KannelSettings) -> str:
    """The sendsms query: UTF-8 text when the SMSC's default alphabet carries it, else ``coding=2`` with UTF-16BE.

    ``to`` stays E.164 with its ``+`` (sent as ``%2B``): Kannel's SMPP module strips
    the ``+`` itself and sets TON international, which digits alone would not get.
    Kannel maps coding 0 onto the SMSC's alphabet (its ``alt-charset``); a text that
    alphabet cannot carry (``€`` on an ASCII SMSC) goes as UCS-2 rather than as ``?``.
    """
    pairs: list[tuple[str, str | bytes]] = [*login_and_addresses(reply, settings)]
    if fits_default_alphabet(reply.text, settings.default_alphabet):
        pairs += [("charset", "UTF-8"), ("text", reply.text.encode("utf-8"))]
    else:
        pairs += [("coding", str(CODING_UCS2)), ("charset", "UTF-16BE"), ("text", reply.text.encode("utf-16-be"))]
    return urlencode(pairs)


async def send(reply: Reply, settings: KannelSettings, client: httpx.AsyncClient) -> Sent:
    separator = "&" if "?" in settings.sendsms_url else "?"
    url = settings.sendsms_url + separator + sendsms_query(reply, settings)
    await call_provider(client, "GET", url, provider=PROVIDER)
    return Sent()  # sendsms answers "0: Accepted for delivery" and no message id


def router(settings: KannelSettings, ctx: ChannelContext) -> APIRouter:
    return secret_form_router(
        WEBHOOK_PATH,
        provider=PROVIDER,
        secret=settings.secret,
        ctx=ctx,
        external_id=external_id,
        rejected_event=REJECTED,
        # Empty on purpose: a body would be texted back to the citizen.
        stored=lambda: Response(status_code=200),
        unavailable=lambda: Response(status_code=503),
    )


ADAPTER = ChannelAdapter(
    name="kannel",
    provider=PROVIDER,
    settings=KannelSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    router=router,
)
