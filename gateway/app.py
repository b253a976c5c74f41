"""The app factory: the running parts of one gateway process and the HTTP surface over them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from channels.base import ChannelAdapter, ChannelContext
from gateway import agency_sync, api, api_lifecycle, lifecycle, logs, media_links, outage, public_api, web
from gateway.auth import TokenCache
from gateway.config import Config
from gateway.context import context_factory
from gateway.inbox import InboxWriter
from gateway.limits import BodyLimit
from gateway.metrics import Metrics
from gateway.normalizer_models import load_understanding
from gateway.notify import DONE_CHANNEL, Listening, notifier_for
from gateway.outage import RETRY_AFTER
from gateway.parts import Parts
from gateway.public import public_body_limits
from gateway.registry import CHANNELS
from gateway.waiters import Waiters, follow_store
from gateway.web import public_pages
from gateway.worker import Worker, queue_depths, run_forever
from normalizer.errors import StoreUnavailable, TryLater
from sinks.store.db import Store, is_outage, open_store, outage_message

log = structlog.get_logger(__name__)


class Gateway:
    """Store, inbox writer, worker and channel services of one process."""

    def __init__(self, config: Config, store: Store | None = None, runs_worker: bool | None = None) -> None:
        self.config = config
        self.store = store or open_store(config.database.url, echo=config.database.echo)
        self.metrics = Metrics()
        self.metrics.watch_queue(lambda: queue_depths(self.store))
        self.metrics.watch_overdue(lambda: lifecycle.overdue_counts(self.store))
        self.waiters = Waiters()
        self.tokens = TokenCache(self.store)
        self.inbox = InboxWriter(self.store, self.metrics, config.inbox.max_batch, on_commit=self._wake_worker)
        self.make_context = context_factory(
            self.store, self.inbox.accept, config.http.public_url, config.data_dir, config.media
        )
        # The normalizer's models (seconds to load, ~140 MB) only where a worker reads reports.
        runs = config.worker.in_process if runs_worker is None else runs_worker
        self.understanding = load_understanding(config) if runs else None
        self.worker = Worker(
            config,
            self.store,
            self.metrics,
            self.make_context,
            on_complete=self.waiters.complete,
            understanding=self.understanding,
        )
        self._stop = threading.Event()
        self._worker_thread: threading.Thread | None = None

    def _wake_worker(self) -> None:
        self.worker.wake.set()

    def start(self) -> None:
        self.inbox.start()
        if self.config.worker.in_process and self._worker_thread is None:
            self._stop.clear()
            self._worker_thread = threading.Thread(
                target=run_forever, args=(self.worker, self._stop), name="worker", daemon=True
            )
            self._worker_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.worker.wake.set()
        if self._worker_thread is not None:
            self._worker_thread.join(timeout=15)
            self._worker_thread = None
        self.inbox.stop()

    async def follow_completions(self, fallback_s: float | None = None) -> None:
        """Answer waiting requests whose rows a worker in another process finished (see ``waiters.follow_store``).

        One look per batch a worker anywhere commits (its announcement: NOTIFY on PostgreSQL, the
        same-host doorbell on SQLite, see gateway/notify.py), and every half second in case one was missed.
        """
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def woken() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed while an announcement came in
                loop.call_soon_threadsafe(wake.set)

        listening = Listening(notifier_for(self.store), DONE_CHANNEL, woken, 1.0, "done-listen")
        try:
            await follow_store(self.waiters, self.store, wake, fallback_s or 0.5)
        finally:
            listening.close()

    @property
    def others_finish_rows(self) -> bool:
        """Whether a worker outside this process may finish the rows this process accepted."""
        return not self.config.worker.in_process or self.store.is_postgres

    def enabled_adapters(self) -> list[tuple[ChannelAdapter, Any]]:
        return [(CHANNELS[name], self.config.channel(name)) for name in self.config.enabled_channels()]


async def _supervise(name: str, adapter: ChannelAdapter, settings: Any, context: ChannelContext) -> None:
    """Keep a listener or poller running: a crash is logged and the service restarted after a pause."""
    assert adapter.service is not None
    delay = 1.0
    while True:
        try:
            log.info(logs.SERVICE_STARTED, channel=name)
            await adapter.service(settings, context)
            log.info(logs.SERVICE_STOPPED, channel=name)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # shutting down: an error raised while cleaning up must not restart the service
            if isinstance(exc, StoreUnavailable) or is_outage(exc):
                # Pollers and listeners simply pause while the store is away (its outage is logged once).
                pause = TryLater.RETRY_AFTER_S
                log.info(logs.SERVICE_PAUSED, channel=name, resume_in_s=pause, error=outage_message(exc))
                await asyncio.sleep(pause)
                continue
            log.exception(logs.SERVICE_CRASHED, channel=name, restart_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)


def create_app(gateway: Gateway) -> FastAPI:
    # One HTTP client for the server side of channels (webhook routers, listeners); closed at shutdown.
    http = httpx.AsyncClient(timeout=30)
    context = gateway.make_context(http)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway.start()
        gateway.waiters.bind(asyncio.get_running_loop())
        tasks: list[asyncio.Task[None]] = []
        if gateway.others_finish_rows:
            tasks.append(asyncio.create_task(gateway.follow_completions()))
        async with http:
            for adapter, settings in gateway.enabled_adapters():
                if adapter.service is not None:
                    tasks.append(asyncio.create_task(_supervise(adapter.name, adapter, settings, context)))
            for sink in gateway.config.sinks:
                if sink.type == "open311":  # updates pulled back, by one instance (advisory lock)
                    poller = agency_sync.poll_open311(gateway.config, gateway.store, sink, context)
                    tasks.append(asyncio.create_task(poller))
            log.info(logs.GATEWAY_STARTED, channels=gateway.config.enabled_channels())
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await asyncio.to_thread(gateway.stop)

    docs = gateway.config.http.api_docs
    app = FastAPI(
        title="lapor-gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    wired: Parts = gateway  # routes see the gateway through this shape only (gateway/parts.py)
    app.state.gateway = wired

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        try:
            if gateway.store.health.is_down:  # e.g. a full disk: reads work, writes do not
                raise StoreUnavailable("store writes are failing")
            await asyncio.to_thread(gateway.store.ping)
        except StoreUnavailable:
            return JSONResponse({"ready": False, "error": "StoreUnavailable"}, status_code=503, headers=RETRY_AFTER)
        return JSONResponse({"ready": True})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body = await asyncio.to_thread(generate_latest, gateway.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # The router tries routes in the order they were included: the providers' webhooks and the manual-entry
    # API, the hottest paths, come before the staff pages (measured in `make bench`, see docs/scaling.md).
    for adapter, settings in gateway.enabled_adapters():
        if adapter.router is not None:
            app.include_router(adapter.router(settings, context))
    app.include_router(api.router)
    app.include_router(public_api.router)
    app.include_router(api_lifecycle.router)
    app.include_router(media_links.router)
    web.install(app)  # staff web pages, their static files and the security headers on every response
    outage.install(app, gateway.store)  # a store outage is every caller's 503 + Retry-After, logged once
    # Outermost of our middleware: an oversized or slow body is refused before any route sees a byte.
    http_config = gateway.config.http
    app.add_middleware(
        BodyLimit,
        default=http_config.max_body_bytes,
        # The public form and API take photos; a citizen over the limit sees the form's Indonesian page.
        overrides={**public_body_limits(gateway.config.web.max_body_bytes), **http_config.body_limits},
        pages={"/lapor": public_pages.too_big_page(gateway.config)},
        body_timeout_s=http_config.body_timeout_s,
    )
    return app
