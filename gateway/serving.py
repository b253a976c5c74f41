"""How ``lapor-gateway serve`` starts its HTTP processes: the uvicorn options in one place, and ``--workers N``.

N > 1 is a pre-fork master (uvicorn's own supervisor): the master binds the
port once and N children accept on that one socket. Chosen over
``SO_REUSEPORT`` because the accept queue is shared: when a child dies (even
``kill -9``) the connections waiting in the backlog are taken by its siblings
instead of being reset with the dead child's own queue, and the master starts
a replacement. Each child builds its own ``Gateway`` (store engine, inbox
writer, worker thread, channel services); services that must be single take
the PostgreSQL advisory lock (``ChannelContext.exclusive``), so exactly one
child of the whole installation runs each.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from gateway.config import Config, load_config
from gateway.limits import server_options, set_head_deadline
from gateway.logs import configure_logging

# The child processes find their configuration here: a path, or "" for the embedded defaults.
CONFIG_ENV = "LAPOR_GATEWAY_SERVE_CONFIG"
CHILD_HEALTHCHECK_S = 120


def uvicorn_options(config: Config) -> dict[str, Any]:
    """Every option ``serve`` gives uvicorn, for one process or many (limits and timeouts belong here too)."""
    return {
        "host": config.http.host,
        "port": config.http.port,
        "log_level": "warning",
        # The C event loop and HTTP parser: measured in `make bench` (see docs/scaling.md).
        "loop": "uvloop",
        "lifespan": "on",
        # X-Forwarded-Proto/-For are believed from this host's proxy and http.trusted_proxies only: the staff
        # cookie's Secure follows the scheme the browser used at the proxy (gateway/web/security.py).
        "forwarded_allow_ips": ["127.0.0.1", *config.http.trusted_proxies],
        # httptools with the head deadline, keep-alive and connection limits (gateway/limits.py).
        **server_options(config.http),
    }


def effective_workers(config: Config, requested: int | None) -> tuple[int, str | None]:
    """How many HTTP processes to run, and a one-line note when fewer than asked."""
    workers = requested if requested is not None else config.http.workers
    if workers > 1 and not config.database.url.startswith(("postgresql", "postgres")):
        return 1, (
            f"http.workers: {workers} asked, serving with 1 process — SQLite has one writer; "
            "use PostgreSQL (database.url) to run more"
        )
    return workers, None


def build_app(config: Config) -> FastAPI:
    """One process's app: its own store engine, inbox writer, worker and services."""
    from gateway.app import Gateway, create_app
    from sinks.store.db import open_store

    set_head_deadline(config.http)  # a pre-forked child's connections too
    store = open_store(config.database.url, echo=config.database.echo)
    app = create_app(Gateway(config, store))
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Keep what start-up built (the normalizer's models and the region index, ~190,000 objects) out of the
    garbage collector's full passes. Otherwise every full pass walks all of it: a pause of 100–150 ms for
    every request in the process, several times a minute under load (it was the p99 of `make bench`).
    Nothing leaks by this: those objects live as long as the process does anyway."""
    gc.collect()
    gc.freeze()


def app_from_environment() -> FastAPI:
    """The factory each pre-forked child calls (uvicorn imports it by name in a fresh interpreter)."""
    given = os.environ.get(CONFIG_ENV, "")
    config = load_config(Path(given) if given else None)
    configure_logging(config.logging.level, config.logging.format)
    return build_app(config)


def run(config: Config, config_path: Path | None, workers: int) -> None:
    """Serve until stopped: in this process when ``workers`` is 1, else under uvicorn's pre-fork master."""
    import uvicorn

    options = uvicorn_options(config)
    if workers <= 1:
        uvicorn.run(build_app(config), **options)
        return
    os.environ[CONFIG_ENV] = str(config_path.resolve()) if config_path else ""
    # A child loads the normalizer's models before it answers the master's health checks on time; on a
    # busy machine that is far past uvicorn's 5 s, after which the master would kill it and start over.
    options["timeout_worker_healthcheck"] = CHILD_HEALTHCHECK_S
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)
