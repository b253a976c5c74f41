"""Staff accounts for the web pages: create, disable, list, and check a password.

Passwords are hashed with argon2id. Repeated wrong passwords lock the
account for a while that doubles with every further miss (a slow-down that
needs no sleeping server thread), so guessing online is hopeless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlmodel import col

from gateway.auth import ROLES, Principal
from normalizer.errors import AuthError
from sinks.store.db import Store
from sinks.store.models import StaffUser, utcnow

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 10
# Misses allowed before the first lock; then 1, 2, 4 … minutes, capped at an hour.
FREE_MISSES = 5
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(hours=1)

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): about 20 ms a check on a 2-core box, still far
# too slow for offline guessing at scale; the hash records its parameters, so raising them later rehashes
# each account at its next sign-in (see check_needs_rehash below).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified when the username is unknown, so a miss on a real account and on a made-up one cost the same time.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A request about an account that cannot be done (bad name, short password, no such user)."""


class LockedOut(AuthError):
    """Too many wrong passwords; the account opens again at ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"account locked until {until.isoformat()}")
        self.until = until


@dataclass(frozen=True)
class UserView:
    username: str
    role: str
    agency: str | None
    created_at: datetime
    disabled: bool
    locked_until: datetime | None
    last_login_at: datetime | None


def _view(user: StaffUser) -> UserView:
    return UserView(
        username=user.username,
        role=user.role,
        agency=user.agency,
        created_at=user.created_at,
        disabled=user.disabled_at is not None,
        locked_until=user.locked_until,
        last_login_at=user.last_login_at,
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(store: Store, username: str, password: str, role: str, agency: str | None = None) -> UserView:
    if not USERNAME.match(username):
        raise UserError("username: 2-64 characters, lower-case letters, digits, dot, dash or underscore")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    with store.write() as session:
        if session.execute(select(StaffUser).where(col(StaffUser.username) == username)).first() is not None:
            raise UserError(f"user {username} already exists")
        user = StaffUser(
            username=username, role=role, agency=agency, password_hash=hash_password(password), created_at=utcnow()
        )
        session.add(user)
        session.flush()
        return _view(user)


def disable_user(store: Store, username: str) -> None:
    """Disabling also ends the user's sessions: every page checks the account on each request."""
    with store.write() as session:
        user = session.execute(select(StaffUser).where(col(StaffUser.username) == username)).scalar_one_or_none()
        if user is None:
            raise UserError(f"no user {username}")
        if user.disabled_at is None:
            user.disabled_at = utcnow()


def list_users(store: Store) -> list[UserView]:
    with store.read() as session:
        rows = session.execute(select(StaffUser).order_by(col(StaffUser.username))).scalars()
        return [_view(user) for user in rows]


def lock_duration(failed_logins: int) -> timedelta | None:
    """How long the account stays shut after this many misses in a row (None: not locked)."""
    if failed_logins < FREE_MISSES:
        return None
    lock: timedelta = FIRST_LOCK * 2 ** min(failed_logins - FREE_MISSES, 16)
    return min(lock, LONGEST_LOCK)


def check_password(store: Store, username: str, password: str, now: datetime | None = None) -> Principal:
    """The principal for a right password; ``AuthError`` (or ``LockedOut``) otherwise, saying no more."""
    now = now or utcnow()
    refusal: AuthError | None = None
    # The refusal is raised after the transaction: raising inside it would roll back the miss counter.
    with store.write() as session:
        user = session.execute(select(StaffUser).where(col(StaffUser.username) == username)).scalar_one_or_none()
        if user is None or user.disabled_at is not None:
            _verify(_DUMMY_HASH, password)
            refusal = AuthError("unknown user or wrong password")
        elif user.locked_until is not None and user.locked_until > now:
            refusal = LockedOut(user.locked_until)
        elif not _verify(user.password_hash, password):
            user.failed_logins += 1
            lock = lock_duration(user.failed_logins)
            user.locked_until = now + lock if lock else None
            refusal = LockedOut(user.locked_until) if user.locked_until else AuthError("unknown user or wrong password")
        else:
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = now
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            principal = Principal(name=user.username, role=user.role, agency=user.agency)
    if refusal is not None:
        raise refusal
    return principal


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
