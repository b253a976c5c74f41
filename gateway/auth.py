"""API tokens: random, shown once, stored as SHA-256; roles ``agent``, ``admin``, ``agency`` (bound to one)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlmodel import col

from normalizer.errors import AuthError
from sinks.store.db import Store
from sinks.store.models import ApiToken, utcnow

Role = Literal["agent", "admin", "agency"]
ROLES: tuple[str, ...] = ("agent", "admin", "agency")
TOKEN_PREFIX = "lpr_"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    # For role ``agency``: the one agency (OPD) code it acts for; it sees nothing else.
    agency: str | None = None

    def can(self, role: str) -> bool:
        """Admins can do what agents and agencies can; agents cannot do admin work; agencies only their own."""
        return self.role == "admin" or self.role == role


def check_agency_binding(role: str, agency: str | None, known: Collection[str]) -> None:
    """An agency role needs exactly one configured agency; other roles take none."""
    if role == "agency":
        if not agency:
            raise ValueError("an agency account needs --agency CODE")
        if agency not in known:
            raise ValueError(f"agency {agency!r} is not configured (known: {', '.join(known) or 'none'})")
    elif agency:
        raise ValueError("--agency belongs to the agency role only")


def hash_token(token: str) -> str:
    # The token is 256 random bits, so a fast hash is enough; a slow KDF would only slow every request.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, name: str, role: Role, agency: str | None = None) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.write() as session:
        session.add(ApiToken(name=name, role=role, agency=agency, token_hash=hash_token(token), created_at=utcnow()))
    return token


def revoke_tokens(store: Store, name: str) -> int:
    """Revoke every live token of ``name``; returns how many were revoked."""
    with store.write() as session:
        result = session.execute(
            update(ApiToken)
            .where(col(ApiToken.name) == name, col(ApiToken.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def authenticate(store: Store, token: str) -> Principal:
    with store.read() as session:
        found = session.execute(
            select(ApiToken).where(col(ApiToken.token_hash) == hash_token(token), col(ApiToken.revoked_at).is_(None))
        ).scalar_one_or_none()
    if found is None:
        raise AuthError("unknown or revoked token")
    return Principal(name=found.name, role=found.role, agency=found.agency)


class TokenCache:
    """Remembers good tokens for ``ttl_s`` seconds so a busy API does not read the table on every request.

    A revoked token therefore stops working within ``ttl_s`` in every process.
    """

    def __init__(self, store: Store, ttl_s: float = 10.0) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._known: dict[str, tuple[Principal, float]] = {}

    def cached(self, token: str) -> Principal | None:
        hit = self._known.get(hash_token(token))
        return hit[0] if hit and hit[1] > time.monotonic() else None

    def authenticate(self, token: str) -> Principal:
        principal = self.cached(token)
        if principal is None:
            principal = authenticate(self._store, token)
            self._known[hash_token(token)] = (principal, time.monotonic() + self._ttl_s)
        return principal
