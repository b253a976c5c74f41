"""What the HTTP SMS gateways (Twilio, Kannel, Jasmin) have in common.

Form bodies decoded to *bytes* (Kannel and Jasmin put UTF-16BE or Latin-1
octets behind the percent escapes, so a form must never be read as UTF-8 up
front), SMS text by charset (data codings and GSM 03.38 are ``channels.gsm``'s),
the shared-secret check, and the mapping of a provider
API's answer onto the error tree.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Self
from urllib.parse import unquote_to_bytes

import httpx
import structlog
from fastapi import APIRouter, Request, Response
from pydantic import SecretStr, model_validator

from channels.base import Accepted, ChannelContext, ChannelSettings, InboxItem, Reply
from channels.gsm import Alphabet
from normalizer.errors import AuthError, ProviderError, StoreUnavailable, raise_for_provider_status
from normalizer.phone import to_e164
from normalizer.types import ChannelMessage

log = structlog.get_logger(__name__)

ACCEPT_FAILED = "sms_http.accept_failed"


class SecretFormSettings(ChannelSettings):
    """A gateway that calls our webhook with a shared ``secret`` and takes replies with a username and password."""

    registry_name: ClassVar[str]  # the key under ``channels:`` that the error message names

    secret: SecretStr = SecretStr("")
    username: str = ""
    password: SecretStr = SecretStr("")
    # What data_coding 0 means on the operator's SMSC behind this gateway (docs/channels/sms-alphabet.md).
    default_alphabet: Alphabet = "gsm0338"

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> Self:
        if self.enabled and not self.secret.get_secret_value():
            name = self.registry_name
            raise ValueError(f"channels.{name}.secret is empty — set it (e.g. secret: ${{{name.upper()}_SECRET}})")
        return self


def login_and_addresses(reply: Reply, settings: SecretFormSettings, to: str | None = None) -> list[tuple[str, str]]:
    """How a send request to Kannel or Jasmin opens: the login, ``to`` (as the gateway spells it), and ``from``."""
    params = [
        ("username", settings.username),
        ("password", settings.password.get_secret_value()),
        ("to", reply.to if to is None else to),
    ]
    our_number = reply.extra.get("our_number")
    if our_number:
        params.append(("from", str(our_number)))
    return params


class Form:
    """An ``application/x-www-form-urlencoded`` payload, values kept as bytes.

    The first occurrence of a name wins; ``getall`` serves Twilio's
    ``RequestValidator``, which signs every value of a repeated name.
    """

    def __init__(self, pairs: Iterable[tuple[str, bytes]]) -> None:
        self.pairs = list(pairs)
        self._first: dict[str, bytes] = {}
        for name, value in self.pairs:
            self._first.setdefault(name, value)

    @classmethod
    def parse(cls, raw: bytes) -> Form:
        return cls(_split_pairs(raw))

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def get_bytes(self, name: str) -> bytes | None:
        return self._first.get(name)

    def get(self, name: str, encoding: str = "utf-8") -> str | None:
        """A value as text; names and addresses are ASCII in practice, so a bad byte is replaced, not fatal."""
        value = self._first.get(name)
        return None if value is None else value.decode(encoding, errors="replace")

    def getall(self, name: str) -> list[str]:
        return [value.decode("utf-8", errors="replace") for key, value in self.pairs if key == name]


def _split_pairs(raw: bytes) -> list[tuple[str, bytes]]:
    pairs: list[tuple[str, bytes]] = []
    for chunk in raw.split(b"&"):
        if not chunk:
            continue
        name, _, value = chunk.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", errors="replace")
        pairs.append((key, unquote_to_bytes(value.replace(b"+", b" "))))
    return pairs


def join_forms(*parts: bytes) -> bytes:
    """Query string and body as one form (Kannel and Jasmin may send either)."""
    return b"&".join(part for part in parts if part)


def without_param(raw: bytes, name: str) -> bytes:
    """The form with every ``name=`` pair dropped and the rest byte-for-byte intact (no secrets in the inbox)."""
    key = name.encode("ascii")
    kept = [chunk for chunk in raw.split(b"&") if chunk and unquote_to_bytes(chunk.partition(b"=")[0]) != key]
    return b"&".join(kept)


def check_secret(given: bytes | None, expected: SecretStr) -> None:
    """Constant-time comparison of a shared secret; an unset secret accepts nobody."""
    wanted = expected.get_secret_value().encode("utf-8")
    if not wanted or given is None or not hmac.compare_digest(given, wanted):
        raise AuthError("wrong or missing secret")


def fallback_external_id(form: Form, *names: str) -> str:
    """A stable id for a message whose gateway sent none: the same delivery hashes the same."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(form.get_bytes(name) or b"")
        digest.update(b"\x00")
    return "sha256:" + digest.hexdigest()


# Labels SMS gateways use that Python spells differently, or that lie.
_CHARSET_ALIASES = {
    "ucs-2": "utf-16-be",
    "ucs2": "utf-16-be",
    "utf-16": "utf-16-be",  # SMS payloads carry no BOM; network order is big-endian
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "windows-1252": "cp1252",
}


def decode_with_charset(data: bytes, charset: str) -> str | None:
    """Bytes by their declared charset; None when Python knows no such charset."""
    label = charset.strip().lower()
    name = _CHARSET_ALIASES.get(label, label)
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return data.decode(name, errors="replace")


def data_coding_of(value: bytes | None) -> int | None:
    """A ``coding`` field as the data_coding octet: digits as the docs show (``8``), or the raw octet (``%08``).

    Real Jasmin posts the octet itself (its own routing tests assert ``b"\\x08"``), so one
    byte that is not an ASCII digit is taken as the value; ``8`` and ``%08`` are the same coding.
    """
    if not value:
        return None
    text = value.strip(b" ")
    if text.isdigit():
        return int(text)
    if len(value) == 1:
        return value[0]
    return None


def parse_int(value: str | None) -> int | None:
    if value is None or not value.strip().lstrip("-").isdigit():
        return None
    return int(value.strip())


def sms_message(
    *,
    provider: str,
    external_id: str,
    sender: str | None,
    text: str,
    our_number: str | None,
) -> ChannelMessage:
    """The ChannelMessage every plain SMS becomes; replies go to the sender in E.164 when it is a phone."""
    phone = to_e164(sender)
    extra: dict[str, str] = {"our_number": our_number} if our_number else {}
    return ChannelMessage(
        channel="sms",
        provider=provider,
        external_id=external_id,
        text=text,
        sender_phone=phone or sender,
        reply_to=phone,
        extra=extra,
    )


async def call_provider(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    **kwargs: object,
) -> httpx.Response:
    """One API call with the error tree applied: 5xx, 429 and network failures retry, other 4xx do not."""
    try:
        response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise ProviderError(f"{provider}: {type(exc).__name__} calling the API") from exc
    raise_for_status(response, provider)
    return response


def raise_for_status(response: httpx.Response, provider: str) -> None:
    raise_for_provider_status(response.status_code, f"{provider}: API", response.text[:200].strip())


def request_form(query: bytes, body: bytes, secret_name: str) -> tuple[Form, bytes]:
    """The form a gateway sent (query string and body together) and the bytes to keep: the same, minus the secret."""
    combined = join_forms(query, body)
    return Form.parse(combined), without_param(combined, secret_name)


async def accept_or_none(ctx: ChannelContext, item: InboxItem) -> Accepted | None:
    """Hand an item to the inbox; None when it could not be stored, so the edge answers "try again"."""
    try:
        return await ctx.accept(item)
    except StoreUnavailable:
        raise  # the gateway answers every edge's "try later" (503 + Retry-After) and logs the outage once
    except Exception:  # the edge's last line: any failure to store means "not accepted"
        log.exception(ACCEPT_FAILED, provider=item.provider)
        return None


def secret_form_router(
    path: str,
    *,
    provider: str,
    secret: SecretStr,
    ctx: ChannelContext,
    external_id: Callable[[bytes, Mapping[str, Any]], str],
    rejected_event: str,
    stored: Callable[[], Response],
    unavailable: Callable[[], Response],
    meta: Mapping[str, Any] | None = None,
) -> APIRouter:
    """The edge of a gateway that calls ``path`` with a form (GET or POST) carrying ``secret``.

    A wrong secret is a 403; otherwise the form, minus the secret, goes to the inbox and the
    gateway gets ``stored()`` after the commit, or ``unavailable()`` when it could not be stored.
    ``meta`` is kept with each row (the connection's default alphabet, which ``parse`` reads).
    """
    api = APIRouter()

    @api.api_route(path, methods=["GET", "POST"], response_class=Response, name=f"{provider}_webhook")
    async def webhook(request: Request) -> Response:
        body = await request.body() if request.method == "POST" else b""
        form, raw = request_form(request.scope["query_string"], body, "secret")
        try:
            check_secret(form.get_bytes("secret"), secret)
        except AuthError as exc:
            log.warning(rejected_event, reason=str(exc))
            return Response(status_code=403)
        item = InboxItem(
            channel="sms", provider=provider, external_id=external_id(raw, {}), raw=raw, meta=dict(meta or {})
        )
        if await accept_or_none(ctx, item) is None:
            return unavailable()
        return stored()

    return api
