"""Sign-in sessions, CSRF and security headers for the web pages.

Sessions live in the database (``web_session``), so any gateway instance
behind a load balancer knows them and disabling a user ends them at once.
The cookie holds 256 random bits; the table keeps only their SHA-256. Every
form carries the session's CSRF token; the login form, which has no session
yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import delete, select
from sqlmodel import col
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import Principal, hash_token
from sinks.store.db import Store
from sinks.store.models import StaffUser, WebSession, utcnow

SESSION_COOKIE = "lapor_session"
LOGIN_CSRF_COOKIE = "lapor_login_csrf"
# One working shift; after that the agent signs in again.
SESSION_LIFETIME = timedelta(hours=12)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's interactive API docs load their script from a CDN and inline a start-up script: they keep
# the other headers but not the strict CSP (they show no complaint data).
_CSP_EXEMPT = ("/docs", "/redoc")
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """ASGI middleware adding the headers to every response (pages, API, webhooks alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exempt = str(scope.get("path", "")).startswith(_CSP_EXEMPT)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in HEADERS if name not in present]
                if not exempt and b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", CSP.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to ``/login`` (and back here after)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class WebError(Exception):
    """A page-level refusal shown as a page in Indonesian (403, 404, 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Staff:
    username: str
    role: str
    csrf_token: str
    # For agency accounts (a liaison officer): the one agency whose complaints they see.
    agency: str | None = None

    def can(self, role: str) -> bool:
        return Principal(self.username, self.role, self.agency).can(role)


def start_session(store: Store, username: str, now: datetime | None = None) -> str:
    """A fresh session (never a reused one: no fixation); returns the cookie value."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with store.write() as session:
        user = session.execute(select(StaffUser).where(col(StaffUser.username) == username)).scalar_one()
        assert user.id is not None
        # Expired sessions are swept here, at a moment that is rare and cheap.
        session.execute(delete(WebSession).where(col(WebSession.expires_at) < now))
        session.add(
            WebSession(
                token_hash=hash_token(token),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
    return token


def end_session(store: Store, token: str) -> None:
    with store.write() as session:
        session.execute(delete(WebSession).where(col(WebSession.token_hash) == hash_token(token)))


def load_session(store: Store, token: str, now: datetime | None = None) -> Staff | None:
    """The signed-in staff member, or None when the session is unknown, expired or the user disabled."""
    now = now or utcnow()
    with store.read() as session:
        found = session.execute(
            select(WebSession, StaffUser)
            .join(StaffUser, col(StaffUser.id) == col(WebSession.user_id))
            .where(col(WebSession.token_hash) == hash_token(token))
        ).first()
    if found is None:
        return None
    web_session, user = found
    if web_session.expires_at <= now or user.disabled_at is not None:
        return None
    return Staff(username=user.username, role=user.role, csrf_token=web_session.csrf_token, agency=user.agency)


def _store(request: Request) -> Store:
    store: Store = request.app.state.gateway.store
    return store


def signed_in(request: Request) -> Staff:
    token = request.cookies.get(SESSION_COOKIE)
    staff = load_session(_store(request), token) if token else None
    if staff is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return staff


def staff_only(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
    """Call-center and Diskominfo pages: an agency account sees only its own inbox (``/instansi``)."""
    if staff.role == "agency":
        raise WebError(403, "Halaman ini bukan untuk akun instansi. Buka Kotak masuk instansi.")
    return staff


def admin_only(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
    if not staff.can("admin"):
        raise WebError(403, "Halaman ini hanya untuk admin.")
    return staff


def agency_or_admin(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
    if not staff.can("agency"):
        raise WebError(403, "Halaman ini untuk akun instansi dan admin.")
    return staff


SignedIn = Annotated[Staff, Depends(staff_only)]
AnyAccount = Annotated[Staff, Depends(signed_in)]
AdminOnly = Annotated[Staff, Depends(admin_only)]
AgencyOrAdmin = Annotated[Staff, Depends(agency_or_admin)]

CSRF_REFUSED = "Formulir ini tidak sah atau sudah kedaluwarsa. Muat ulang halaman, lalu kirim lagi."


def same_token(given: Any, expected: str | None) -> bool:
    return isinstance(given, str) and bool(expected) and secrets.compare_digest(given, expected or "")


async def checked_form(request: Request, staff: Staff, max_part_size: int = 1024 * 1024) -> FormData:
    """The posted form, after its CSRF token matched the session's; refused with 403 otherwise."""
    form = await request.form(max_files=1, max_fields=200, max_part_size=max_part_size)
    if not same_token(form.get("csrf_token"), staff.csrf_token):
        raise WebError(403, CSRF_REFUSED)
    return form


def cookie_options(request: Request) -> dict[str, Any]:
    """HttpOnly, SameSite=Lax, and Secure when the browser's request came over https (or ``web.cookie_secure``).

    Not from ``http.public_url``: that is the providers' address, and staff on a plain-http intranet
    would lose a Secure cookie at once.
    """
    forced: bool | None = request.app.state.gateway.config.web.cookie_secure
    secure = request.url.scheme == "https" if forced is None else forced
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/"}
