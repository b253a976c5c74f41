"""Twilio: SMS and WhatsApp through Twilio's Programmable Messaging.

Twilio POSTs a form to ``/webhooks/twilio`` signed with ``X-Twilio-Signature``
(HMAC-SHA1 of the URL Twilio called plus the sorted form fields, keyed with the
auth token). Behind a proxy that URL is ``http.public_url``, not what the
gateway sees, so the signature is checked against the public URL. Replies go
out through the REST API (``api_base`` lets tests point it at a local server).
"""

from __future__ import annotations

import hmac
import mimetypes
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from fastapi import APIRouter, Request, Response
from pydantic import Field, SecretStr, model_validator
from twilio.request_validator import RequestValidator

from channels.base import ChannelAdapter, ChannelContext, ChannelSettings, InboxItem, Receipt, Reply, Sent
from channels.media import fetch_media as fetch
from channels.sms_http import Form, accept_or_none, call_provider, sms_message
from normalizer.errors import AuthError, IgnoredMessage, PayloadError, ProviderRejected
from normalizer.phone import to_e164
from normalizer.types import Attachment, ChannelMessage, Location

PROVIDER = "twilio"
WEBHOOK_PATH = "/webhooks/twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
WHATSAPP_PREFIX = "whatsapp:"
MAX_MEDIA = 10  # Twilio attaches at most ten media items to one message
# "Nothing to say right now": the acknowledgement goes out later through the outbox.
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'

REJECTED = "twilio.rejected"

log = structlog.get_logger(__name__)


class TwilioSettings(ChannelSettings):
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    api_base: str = "https://api.twilio.com"
    # WhatsApp through Twilio is a chat: a message within this many minutes joins the open complaint
    # (the worker applies it to WhatsApp messages only; SMS through Twilio is never windowed).
    followup_window_minutes: int = Field(default=30, ge=0)
    # The only hosts our account credentials go to when fetching media (besides api_base's);
    # Twilio's redirect to its CDN is followed without them.
    media_hosts: list[str] = Field(default_factory=lambda: ["api.twilio.com"])

    @model_validator(mode="after")
    def _credentials_when_enabled(self) -> TwilioSettings:
        if self.enabled and not self.auth_token.get_secret_value():
            raise ValueError("channels.twilio.auth_token is empty — set it (e.g. auth_token: ${TWILIO_AUTH_TOKEN})")
        if self.enabled and not self.account_sid:
            raise ValueError("channels.twilio.account_sid is empty — set it to your AC… account SID")
        return self


def signed_url(public_url: str, request: Request) -> str:
    """The URL Twilio called: the public base when one is configured, else what this process saw."""
    if not public_url:
        return str(request.url)
    query = request.url.query
    return public_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


def verify(raw: bytes, url: str, signature: str | None, auth_token: SecretStr) -> Form:
    """The form, once ``signature`` is Twilio's for this URL and form body; AuthError otherwise."""
    if not signature:
        raise AuthError("missing X-Twilio-Signature")
    validator = RequestValidator(auth_token.get_secret_value())
    # RequestValidator signs every value of a repeated field; Form.getall gives it those.
    form = Form.parse(raw)
    # The URL as called is one of the two that ``validate`` always signs (with and without the port): when it
    # matches, the second HMAC is not needed. Only a mismatch pays for ``validate``'s other variant.
    if hmac.compare_digest(validator.compute_signature(url, form).encode(), signature.encode()):
        return form
    if not validator.validate(url, form, signature):
        raise AuthError("X-Twilio-Signature does not match")
    return form


def _is_status_callback(form: Form) -> bool:
    status = form.get("MessageStatus")
    return status is not None and status != "received"


def _message_sid(form: Form) -> str:
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    if not sid:
        raise PayloadError("twilio: form has no MessageSid")
    return sid


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    return _form_id(Form.parse(raw))


def _form_id(form: Form) -> str:
    sid = _message_sid(form)
    # One reply gets several status callbacks (queued, sent, delivered): each is its own row.
    return f"{sid}:{form.get('MessageStatus')}" if _is_status_callback(form) else sid


def _media(form: Form) -> list[dict[str, str | None]]:
    media: list[dict[str, str | None]] = []
    for index in range(MAX_MEDIA):
        url = form.get(f"MediaUrl{index}")
        if not url:
            break
        media.append({"url": url, "content_type": form.get(f"MediaContentType{index}")})
    return media


def _location(form: Form) -> Location | None:
    latitude, longitude = form.get("Latitude"), form.get("Longitude")
    if not latitude or not longitude:
        return None
    try:
        lat, lon = float(latitude), float(longitude)
    except ValueError:
        return None
    return Location(text=form.get("Address") or form.get("Label"), lat=lat, lon=lon)


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    form = Form.parse(raw)
    if _is_status_callback(form):
        raise IgnoredMessage(f"twilio status callback ({form.get('MessageStatus')})")
    sid = _message_sid(form)
    sender = form.get("From")
    if not sender:
        raise PayloadError("twilio: form has no From")
    our_number = form.get("To")
    text = form.get("Body") or ""
    extra: dict[str, Any] = {"our_number": our_number} if our_number else {}
    media = tuple(_media(form))

    if sender.lower().startswith(WHATSAPP_PREFIX):
        return [
            ChannelMessage(
                channel="whatsapp",
                provider=PROVIDER,
                external_id=sid,
                text=text,
                sender_name=form.get("ProfileName"),
                sender_phone=to_e164(sender) or form.get("WaId"),
                # Keep the prefix: Twilio sends to "whatsapp:+62…" on the WhatsApp channel.
                reply_to=sender,
                location=_location(form),
                pending_media=media,
                extra=extra,
            )
        ]
    message = sms_message(provider=PROVIDER, external_id=sid, sender=sender, text=text, our_number=our_number)
    return [replace(message, extra={**message.extra, **extra}, pending_media=media)]


def receipts(raw: bytes, meta: Mapping[str, Any]) -> list[Receipt]:
    """A status callback for a reply we sent, as Twilio reports it (queued, sent, delivered, failed…)."""
    form = Form.parse(raw)
    if not _is_status_callback(form):
        return []
    return [
        Receipt(
            provider_message_id=_message_sid(form),
            status=form.get("MessageStatus") or "unknown",
            error=form.get("ErrorCode"),
        )
    ]


def _auth(settings: TwilioSettings) -> httpx.BasicAuth:
    return httpx.BasicAuth(settings.account_sid, settings.auth_token.get_secret_value())


def _filename(url: str, content_type: str | None) -> str:
    stem = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or "media"
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) if content_type else None
    return stem + (extension or "")


async def fetch_media(media: Mapping[str, Any], settings: TwilioSettings, ctx: ChannelContext) -> Attachment:
    """One ``MediaUrl`` (relative ones against ``api_base``), with our credentials only on Twilio's hosts."""
    url = str(media["url"])
    fetched = await fetch(
        ctx.http,
        url,
        ctx.media,
        credential_hosts=[*settings.media_hosts, httpx.URL(settings.api_base).host],
        auth=_auth(settings),
        base_url=settings.api_base,
    )
    content_type = media.get("content_type") or fetched.content_type
    return ctx.save_attachment(fetched.data, _filename(url, content_type), content_type)


async def send(reply: Reply, settings: TwilioSettings, client: httpx.AsyncClient) -> Sent:
    our_number = reply.extra.get("our_number")
    if not our_number:
        raise ProviderRejected("twilio: the reply has no sender number (extra.our_number)")
    url = f"{settings.api_base.rstrip('/')}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
    response = await call_provider(
        client,
        "POST",
        url,
        provider=PROVIDER,
        data={"To": reply.to, "From": str(our_number), "Body": reply.text},
        auth=_auth(settings),
    )
    try:
        sid = response.json().get("sid")
    except ValueError:
        sid = None
    return Sent(provider_message_id=str(sid) if sid else None)


def router(settings: TwilioSettings, ctx: ChannelContext) -> APIRouter:
    api = APIRouter()

    @api.post(WEBHOOK_PATH, response_class=Response)
    async def twilio_webhook(request: Request) -> Response:
        raw = await request.body()
        try:
            form = verify(
                raw, signed_url(ctx.public_url, request), request.headers.get(SIGNATURE_HEADER), settings.auth_token
            )
            message_id = _form_id(form)
        except AuthError as exc:
            log.warning(REJECTED, reason=str(exc))
            return Response(status_code=403)
        except PayloadError as exc:
            log.warning(REJECTED, reason=str(exc))
            return Response(status_code=400)
        sender = form.get("From") or ""
        item = InboxItem(
            channel="whatsapp" if sender.lower().startswith(WHATSAPP_PREFIX) else "sms",
            provider=PROVIDER,
            external_id=message_id,
            raw=raw,
            # A status callback stays pending too: the worker applies its receipt, then parse marks it ignored.
            headers={"content-type": request.headers.get("content-type", "")},
        )
        if await accept_or_none(ctx, item) is None:
            return Response(status_code=503)
        return Response(content=EMPTY_TWIML, media_type="application/xml")

    return api


ADAPTER = ChannelAdapter(
    name="twilio",
    provider=PROVIDER,
    settings=TwilioSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    router=router,
    receipts=receipts,
    fetch_media=fetch_media,
)
