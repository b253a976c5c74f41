"""``/login`` and ``/logout``; ``/`` sends staff to the page they use most."""

from __future__ import annotations

import secrets
from typing import Annotated

import structlog
from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from gateway import users
from gateway.web.render import render
from gateway.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    AnyAccount,
    WebError,
    checked_form,
    cookie_options,
    end_session,
    same_token,
    start_session,
)
from normalizer.errors import AuthError

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

WEB_LOGIN = "web.login"
WEB_LOGIN_REFUSED = "web.login_refused"
WEB_LOGOUT = "web.logout"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//host`` or ``https://…`` (an open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, next_path: str, error: str | None = None, status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", {"login_csrf": token, "next": next_path, "error": error}, status=status)
    options = cookie_options(request)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, **{**options, "samesite": "strict"})
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, _safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    if not same_token(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE)):
        raise WebError(403, "Formulir masuk kedaluwarsa. Muat ulang halaman, lalu masuk lagi.")
    gateway = request.app.state.gateway
    name = username.strip().lower()
    address = request.client.host if request.client else None
    try:
        principal = await run_in_threadpool(users.check_password, gateway.store, name, password, None, address)
    except users.Throttled as exc:
        log.info(WEB_LOGIN_REFUSED, username=name, reason="throttled", wait_s=exc.seconds)
        message = f"Terlalu banyak kata sandi salah. Coba lagi dalam {exc.seconds} detik."
        response = _login_page(request, _safe_next(next), message, status=429)
        response.headers["Retry-After"] = str(exc.seconds)
        return response
    except AuthError:
        log.info(WEB_LOGIN_REFUSED, username=name, reason="wrong")
        return _login_page(request, _safe_next(next), "Nama pengguna atau kata sandi salah.", status=400)
    token = await run_in_threadpool(start_session, gateway.store, principal.name)
    log.info(WEB_LOGIN, username=principal.name, role=principal.role)
    response = RedirectResponse(_safe_next(next), status_code=303)
    lifetime = int(SESSION_LIFETIME.total_seconds())
    response.set_cookie(SESSION_COOKIE, token, max_age=lifetime, **cookie_options(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, staff: AnyAccount) -> Response:
    await checked_form(request, staff)
    token = request.cookies.get(SESSION_COOKIE, "")
    await run_in_threadpool(end_session, request.app.state.gateway.store, token)
    log.info(WEB_LOGOUT, username=staff.username)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(staff: AnyAccount) -> Response:
    start = {"agent": "/laporan/baru", "agency": "/instansi"}.get(staff.role, "/pengaduan")
    return RedirectResponse(start, status_code=303)
