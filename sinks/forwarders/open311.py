"""Open311 GeoReport v2: a send half (post a forwarded complaint) and a fetch-updates half (read requests back).

Send: ``POST {endpoint}/requests.json`` form-encoded. The service code comes from the complaint's category
(``service_codes``); the service definition (``GET services/{code}.json``, cached) says whether the server
takes our ``attribute[lapor_tracking_id]``. Every description starts with the tracking id, so after a
timeout the retry first looks for the request it may already have made (``GET requests.json`` for that
service since the forward) and does not post a second one. A batch service answers with a ``token``,
turned into a ``service_request_id`` by ``GET tokens/{token}.json``; while it is not one yet, the forward
returns ``token:<token>`` and the poller asks again later.

Errors arrive as ``[{"code", "description"}]``: 400/403/404 go to the failed list with the description;
5xx and timeouts are tried again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from normalizer.errors import ProviderError, ProviderRejected

TOKEN_PREFIX = "token:"
DESCRIPTION_LIMIT = 4000
TRACKING_ATTRIBUTE = "lapor_tracking_id"
# Service lists and definitions change rarely; an hour keeps a forward from fetching them every time.
DEFINITION_TTL_S = 3600.0
# Token look-ups right after the post, before leaving it to the poller (seconds between tries).
TOKEN_WAITS = (0.2, 0.5, 1.0)
MAX_IDS_PER_CALL = 50
FORM = {"content-type": "application/x-www-form-urlencoded"}

_cache: dict[tuple[str, str], tuple[float, Any]] = {}


@dataclass(frozen=True)
class ServiceRequest:
    """One request as ``requests.json`` tells it."""

    service_request_id: str
    status: str  # open | closed
    status_notes: str | None
    updated_datetime: datetime | None
    description: str | None = None


def _url(sink: Any, path: str) -> str:
    return f"{str(sink.endpoint).rstrip('/')}/{path}"


def _auth(sink: Any) -> dict[str, str]:
    params = {"api_key": sink.api_key.get_secret_value()}
    if sink.jurisdiction_id:
        params["jurisdiction_id"] = sink.jurisdiction_id
    return params


def _errors(response: httpx.Response) -> str:
    """The GeoReport error array as one line, or the start of whatever else came back."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, list) and body and isinstance(body[0], dict) and "description" in body[0]:
        return "; ".join(f"{each.get('code', '')} {each.get('description', '')}".strip() for each in body)
    return response.text[:200]


async def _call(client: httpx.AsyncClient, sink: Any, method: str, path: str, **kwargs: Any) -> Any:
    """One call; the JSON answer, or the error tree (5xx/timeout retryable, 4xx for good)."""
    try:
        response = await client.request(method, _url(sink, path), timeout=sink.timeout_s, **kwargs)
    except httpx.HTTPError as exc:
        raise ProviderError(f"open311 {sink.name}: {path} unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderError(f"open311 {sink.name}: {path} answered {response.status_code}: {_errors(response)}")
    if response.status_code >= 400:
        raise ProviderRejected(f"open311 {sink.name}: {path} answered {response.status_code}: {_errors(response)}")
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(f"open311 {sink.name}: {path} answered with no JSON") from exc


async def _cached(key: tuple[str, str], fetch: Any) -> Any:
    hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    value = await fetch()
    _cache[key] = (time.monotonic() + DEFINITION_TTL_S, value)
    return value


async def takes_tracking_attribute(sink: Any, code: str, client: httpx.AsyncClient) -> bool:
    """Whether the service's definition has our ``lapor_tracking_id`` attribute (services without metadata do not)."""

    async def services() -> Any:
        return await _call(client, sink, "GET", "services.json", params=_auth(sink))

    listed = await _cached((str(sink.endpoint), "services"), services)
    service = next((s for s in listed if isinstance(s, dict) and s.get("service_code") == code), None)
    if service is None:
        raise ProviderRejected(f"open311 {sink.name}: the server has no service {code!r}")
    if not service.get("metadata"):
        return False

    async def definition() -> Any:
        return await _call(client, sink, "GET", f"services/{code}.json", params=_auth(sink))

    defined = await _cached((str(sink.endpoint), f"services/{code}"), definition)
    return any(a.get("code") == TRACKING_ATTRIBUTE for a in defined.get("attributes", []) if isinstance(a, dict))


def service_code(sink: Any, category: str | None) -> str:
    code = sink.service_codes.get(category or "") or sink.default_service_code
    if not code:
        raise ProviderRejected(
            f"open311 {sink.name}: no service code for category {category!r} — add it to service_codes"
        )
    return str(code)


def request_form(payload: dict[str, Any], sink: Any, code: str, with_attribute: bool) -> list[tuple[str, str]]:
    record = payload["record"]
    tracking_id = record["tracking_id"]
    text = f"{tracking_id}: {record.get('subject') + ' — ' if record.get('subject') else ''}{record['body']}"
    form: list[tuple[str, str]] = [*_auth(sink).items(), ("service_code", code)]
    form.append(("description", text[:DESCRIPTION_LIMIT]))
    location = record.get("location") or {}
    if location.get("lat") is not None and location.get("lon") is not None:
        form += [("lat", str(location["lat"])), ("long", str(location["lon"]))]
    else:
        # GeoReport needs a place: the citizen's words for it, or the region we recognised.
        form.append(("address_string", location.get("text") or location.get("region_name") or "-"))
    if with_attribute:
        form.append((f"attribute[{TRACKING_ATTRIBUTE}]", tracking_id))
    if payload.get("media_url"):
        form.append(("media_url", payload["media_url"]))
    reporter = record.get("reporter") or {}
    if reporter.get("anonymity") == "public":
        name = (reporter.get("name") or "").split(" ", 1)
        for key, value in (
            ("first_name", name[0]),
            ("last_name", name[1] if len(name) > 1 else ""),
            ("phone", reporter.get("phone")),
            ("email", reporter.get("email")),
        ):
            if value:
                form.append((key, value))
    return form


async def find_existing(sink: Any, payload: dict[str, Any], code: str, client: httpx.AsyncClient) -> str | None:
    """The request an earlier, timed-out try already made: same service, since the forward, our id first."""
    tracking_id = payload["record"]["tracking_id"]
    since = datetime.fromisoformat(str(payload["event"]["at"]).replace("Z", "+00:00")) - timedelta(hours=1)
    params = {**_auth(sink), "service_code": code, "start_date": since.isoformat()}
    for each in await _call(client, sink, "GET", "requests.json", params=params):
        if isinstance(each, dict) and str(each.get("description") or "").startswith(f"{tracking_id}:"):
            return str(each["service_request_id"])
    return None


async def resolve_token(sink: Any, token: str, client: httpx.AsyncClient) -> str | None:
    answer = await _call(client, sink, "GET", f"tokens/{token}.json", params=_auth(sink))
    for each in answer if isinstance(answer, list) else []:
        if isinstance(each, dict) and each.get("service_request_id"):
            return str(each["service_request_id"])
    return None


async def forward(
    payload: dict[str, Any], sink: Any, idempotency_key: str, client: httpx.AsyncClient, attempts: int = 0
) -> str | None:
    """Post a forwarded complaint once; returns its ``service_request_id`` (or ``token:<token>``)."""
    code = service_code(sink, payload["record"].get("category"))
    if attempts > 0:
        existing = await find_existing(sink, payload, code, client)
        if existing is not None:
            return existing
    with_attribute = await takes_tracking_attribute(sink, code, client)
    form = urlencode(request_form(payload, sink, code, with_attribute)).encode()
    answer = await _call(client, sink, "POST", "requests.json", content=form, headers=FORM)
    first = answer[0] if isinstance(answer, list) and answer else {}
    if first.get("service_request_id"):
        return str(first["service_request_id"])
    token = first.get("token")
    if not token:
        raise ProviderError(f"open311 {sink.name}: requests.json answered with neither an id nor a token")
    for wait in TOKEN_WAITS:
        await asyncio.sleep(wait)
        found = await resolve_token(sink, str(token), client)
        if found:
            return found
    return f"{TOKEN_PREFIX}{token}"


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


async def fetch_requests(sink: Any, ids: list[str], client: httpx.AsyncClient) -> list[ServiceRequest]:
    """The current state of up to 50 requests (the spec's ``service_request_id=a,b,…`` form)."""
    if len(ids) > MAX_IDS_PER_CALL:
        raise ValueError(f"at most {MAX_IDS_PER_CALL} ids a call")
    params = {**_auth(sink), "service_request_id": ",".join(ids)}
    answer = await _call(client, sink, "GET", "requests.json", params=params)
    found: list[ServiceRequest] = []
    for each in answer if isinstance(answer, list) else []:
        if not isinstance(each, dict) or not each.get("service_request_id"):
            continue
        found.append(
            ServiceRequest(
                service_request_id=str(each["service_request_id"]),
                status=str(each.get("status") or "open").lower(),
                status_notes=(str(each["status_notes"]).strip() or None) if each.get("status_notes") else None,
                updated_datetime=_when(each.get("updated_datetime")),
                description=each.get("description"),
            )
        )
    return found
