"""What the HTTP surface answers while the store is away: every caller's "try later", from one handler.

A store outage reaches a route as ``StoreUnavailable`` (``Store.read``/``write``
translate the driver's errors, see ``sinks/store/db.py``). Routes and webhook
edges let it rise; this handler turns it into a 503 with ``Retry-After``:
JSON for the API, a page in Indonesian for staff's browsers, plain text for
providers' webhooks (all of which redeliver on a 5xx). It logs nothing per
request: the store's health says once that it is down and once that it is back.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from gateway.web.render import render
from normalizer.errors import StoreUnavailable, TryLater
from sinks.store.db import Store

RETRY_AFTER = {"Retry-After": str(TryLater.RETRY_AFTER_S)}
PAGE_MESSAGE = (
    "Basis data laporan sedang tidak dapat dihubungi. Tidak ada data yang hilang: "
    f"silakan coba lagi dalam {TryLater.RETRY_AFTER_S} detik."
)


def try_later_response(request: Request) -> Response:
    """The 503 for this caller: the API's JSON, a staff page, or a provider's plain text."""
    path = request.url.path
    if path.startswith("/api/") or path == "/readyz":
        return JSONResponse({"detail": TryLater.HTTP_DETAIL}, status_code=TryLater.HTTP_STATUS, headers=RETRY_AFTER)
    if "text/html" in request.headers.get("accept", ""):
        # No staff lookup: the sessions live in the very store that is away.
        status = TryLater.HTTP_STATUS
        page = render(request, "error.html", {"message": PAGE_MESSAGE, "status": status}, None, status)
        page.headers.update(RETRY_AFTER)
        return page
    return PlainTextResponse(TryLater.HTTP_DETAIL, status_code=TryLater.HTTP_STATUS, headers=RETRY_AFTER)


def install(app: FastAPI, store: Store) -> None:
    async def store_unavailable(request: Request, exc: Exception) -> Response:
        store.health.refused_request()
        return try_later_response(request)

    app.add_exception_handler(StoreUnavailable, store_unavailable)
