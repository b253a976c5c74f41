"""Staff accounts for the web pages: create, disable, list, and check a password.

Passwords are hashed with argon2id. Wrong passwords slow down both the
account and the address they come from (``gateway/throttle.py``): after a
few misses each further one makes the next try wait longer, doubling. The
account's wait is short (at most a minute), so nobody can shut an admin out
by guessing wrong on purpose; the address's grows to a quarter of an hour, so
one machine cannot guess across many names. A made-up name is counted and
answered exactly like a real one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlmodel import col

from gateway import throttle
from gateway.auth import ROLES, Principal
from normalizer.errors import AuthError
from sinks.store.db import Store
from sinks.store.models import StaffUser, utcnow

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 10
# Sign-in throttles: per account (short, so it cannot be turned into a lock-out) and per address.
ACCOUNT_DELAYS = throttle.Delays(
    free=5, first=timedelta(seconds=1), longest=timedelta(minutes=1), window=timedelta(hours=1)
)
ADDRESS_DELAYS = throttle.Delays(
    free=10, first=timedelta(seconds=1), longest=timedelta(minutes=15), window=timedelta(hours=1)
)

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): about 20 ms a check on a 2-core box, still far
# too slow for offline guessing at scale; the hash records its parameters, so raising them later rehashes
# each account at its next sign-in (see check_needs_rehash below).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified when the username is unknown, so a miss on a real account and on a made-up one cost the same time.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A request about an account that cannot be done (bad name, short password, no such user)."""


class Throttled(AuthError):
    """Too many wrong passwords lately from this address or for this name: try again in ``wait``."""

    def __init__(self, wait: timedelta) -> None:
        self.seconds = max(1, int(wait.total_seconds() + 0.999))
        super().__init__(f"too many wrong passwords; try again in {self.seconds} s")


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


def check_password(
    store: Store, username: str, password: str, now: datetime | None = None, address: str | None = None
) -> Principal:
    """The principal for a right password; ``AuthError`` (or ``Throttled``) otherwise, saying no more.

    Known, unknown and disabled names go through the same steps (the same rows, the same hash
    check, the same answers), so the answers tell an outsider nothing about which names exist.
    """
    now = now or utcnow()
    refusal: AuthError | None = None
    principal: Principal | None = None
    # The refusal is raised after the transaction: raising inside it would roll back the miss counters.
    with store.write() as session:
        # Locked in a fixed order (account, then address) so two sign-ins never wait on each other in a circle.
        account = throttle.locked(session, f"login-user:{username}", now, ACCOUNT_DELAYS.window)
        counted = [(account, ACCOUNT_DELAYS)]
        if address:
            counted.append(
                (throttle.locked(session, f"login-address:{address}", now, ADDRESS_DELAYS.window), ADDRESS_DELAYS)
            )
        wait = throttle.wait([row for row, _ in counted], now)
        user = session.execute(select(StaffUser).where(col(StaffUser.username) == username)).scalar_one_or_none()
        if wait is not None:
            refusal = Throttled(wait)  # no hash check at all while waiting: guesses are not even looked at
        elif user is None or user.disabled_at is not None:
            _verify(_DUMMY_HASH, password)
            refusal = AuthError("unknown user or wrong password")
        elif not _verify(user.password_hash, password):
            refusal = AuthError("unknown user or wrong password")
        else:
            throttle.clear(account, now)
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = now
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            principal = Principal(name=user.username, role=user.role, agency=user.agency)
            throttle.prune(session, now)
        if refusal is not None and not isinstance(refusal, Throttled):
            for row, delays in counted:
                throttle.miss(row, delays, now)
    if refusal is not None:
        raise refusal
    assert principal is not None
    return principal


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
