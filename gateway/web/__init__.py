"""Web pages for call-center staff and admins, in Bahasa Indonesia, served by the gateway itself.

``install(app)`` is all ``create_app`` calls: it mounts the pages and their
static files, the security headers for every response, and the pages that
answer a missing sign-in (redirect to ``/login``) or a refusal (403/404).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from gateway.web import admin, complaints, import_pages, lifecycle_pages, new_report, public_pages, recap_pages, sign_in
from gateway.web.render import STATIC, render
from gateway.web.security import LoginRequired, SecurityHeaders, WebError, signed_in

ROUTERS = (
    sign_in.router,
    new_report.router,
    complaints.router,
    lifecycle_pages.router,
    admin.router,
    recap_pages.router,
    import_pages.router,
    public_pages.router,
)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebError)
    try:
        staff = signed_in(request)
    except LoginRequired:
        staff = None
    return render(request, "error.html", {"message": exc.message, "status": exc.status}, staff, exc.status)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(WebError, _refused)
    app.add_middleware(SecurityHeaders)
