"""Shared fixtures: every store test runs twice, on SQLite and on the machine's PostgreSQL.

- ``db_url``: a fresh database per test (a SQLite file, or a PostgreSQL schema of its own).
- ``config``: a ``Config`` on that database with a fast worker; ``make_config(**overrides)`` for more.
- ``store``: the migrated store.  ``gateway``: the running parts.  ``client``: a TestClient over the
  app with its lifespan running (so the worker thread and channel services are up).
- ``agent_token`` / ``admin_token``: bearer tokens for the API.

Channel tests: build ``make_config(channels={"twilio": {...}})`` and use ``running_client(config)``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from fastapi.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.auth import create_token
from gateway.config import Config, parse_config
from sinks.store.db import Store, open_store, upgrade

# Shared helpers in tests/support assert too: give their failures pytest's detailed messages
# (before any test module imports them).
pytest.register_assert_rewrite("tests.support")

POSTGRES_URL = os.environ.get("LAPOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL of the test PostgreSQL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(autouse=True)
def _structlog_as_it_was() -> Iterator[None]:
    """A test that runs a CLI command configures logging for the process (a level of warning, say);
    the next test's ``capture_logs`` must not inherit that filter."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/lapor.db"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """For what only PostgreSQL can do (several processes on one store)."""
    with postgres_schema() as url:
        yield url


def build_config(db_url: str, data_dir: Path, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "data_dir": str(data_dir),
        "worker": {"poll_interval_s": 0.05, "backoff_initial_s": 0.0, "backoff_max_s": 0.0, "max_attempts": 3},
        "logging": {"format": "json"},
        # The SMTP listener is on by default (make run); tests that want it pass their own channels block.
        "channels": {"smtp": {"enabled": False}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data)


@pytest.fixture
def make_config(db_url: str, tmp_path: Path) -> Callable[..., Config]:
    def make(**overrides: Any) -> Config:
        return build_config(db_url, tmp_path / "data", **overrides)

    return make


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    upgrade(store)
    yield store
    store.dispose()


@pytest.fixture
def gateway(config: Config, store: Store) -> Gateway:
    return Gateway(config, store)


@pytest.fixture
def running_client(store: Store) -> Callable[[Config], Any]:
    """``with running_client(config) as client:`` — the app over the test's store, lifespan running."""

    def start(config: Config) -> TestClient:
        return TestClient(create_app(Gateway(config, store)))

    return start


@pytest.fixture
def client(gateway: Gateway) -> Iterator[TestClient]:
    with TestClient(create_app(gateway)) as client:
        yield client


@pytest.fixture
def agent_token(store: Store) -> str:
    return create_token(store, "siti", "agent")


@pytest.fixture
def admin_token(store: Store) -> str:
    return create_token(store, "rina", "admin")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
