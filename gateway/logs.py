"""structlog set-up: JSON lines in production, pretty in a terminal, personal data masked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# Event names are stable constants: dashboards and alerts match on them.
INBOX_ACCEPTED = "inbox.accepted"
INBOX_DUPLICATE = "inbox.duplicate"
INBOX_REJECTED = "inbox.rejected"
WORKER_PROCESSED = "worker.processed"
WORKER_RETRY = "worker.retry"
WORKER_FAILED = "worker.failed"
WORKER_IGNORED = "worker.ignored"
WORKER_CRASHED = "worker.crashed"
OUTBOX_SENT = "outbox.sent"
OUTBOX_RETRY = "outbox.retry"
OUTBOX_FAILED = "outbox.failed"
MEDIA_ATTACHED = "media.attached"
MEDIA_RETRY = "media.retry"
MEDIA_FAILED = "media.failed"
REPLAY_REQUESTED = "replay.requested"
SERVICE_STARTED = "service.started"
SERVICE_STOPPED = "service.stopped"
SERVICE_CRASHED = "service.crashed"
SERVICE_PAUSED = "service.paused"
AUTH_REFUSED = "auth.refused"
GATEWAY_STARTED = "gateway.started"
RETENTION_FAILED = "retention.failed"
NORMALIZER_TRAINED = "normalizer.trained"
NORMALIZER_RENORMALIZED = "normalizer.renormalized"
NORMALIZER_CACHE_UNWRITABLE = "normalizer.cache_unwritable"
HTTP_BODY_REFUSED = "http.body_refused"
HTTP_HEADER_TIMEOUT = "http.header_timeout"
NOTIFY_RING_FAILED = "notify.ring_failed"
NOTIFY_LISTEN_FAILED = "notify.listen_failed"

# A 16-digit NIK (national id) and phone numbers in their Indonesian spellings.
_NIK = re.compile(r"(?<!\d)(\d{6})\d{6}(\d{4})(?!\d)")
_PHONE = re.compile(r"(?<![\w+])(\+?(?:62|0)8\d)[\d \-]{5,12}(\d{2})(?!\d)")
_INTL_PHONE = re.compile(r"(?<![\w])(\+\d{2})\d{6,11}(\d{2})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


# What each of those four needs somewhere in the text (16 digits, "08" or "628", "+" and a digit, "@"): one
# search that fails for most values of a log line (event names, channels, tracking ids) spares the four.
_MAYBE_PERSONAL = re.compile(r"\d{16}|08|628|\+\d|@")


def mask(text: str) -> str:
    """Hide the middle of NIKs, phone numbers and e-mail addresses, keeping enough to tell them apart."""
    if not _MAYBE_PERSONAL.search(text):
        return text
    text = _NIK.sub(r"\1******\2", text)
    text = _PHONE.sub(r"\1*****\2", text)
    text = _INTL_PHONE.sub(r"\1******\2", text)
    return _EMAIL.sub(r"\1***@\2", text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {key: _mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(item) for item in value]
    return value


def mask_personal_data(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every string value (and the event) goes through ``mask``."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask_value(value)
    return event_dict


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (tests and daemons swap it), like ``_stderr_logger``."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """JSON when not on a terminal (or asked for), console rendering on a terminal.

    Libraries that log through the standard library (uvicorn's "Exception in ASGI application",
    SQLAlchemy, asyncio, aiosmtpd) go through the same processors, so in JSON a traceback is one
    field (``exception``) of one line, never lines of its own.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # Looked up at each use, not at configure time: tests and daemons swap sys.stderr.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.set_name("lapor-gateway")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                mask_personal_data,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "lapor-gateway"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # uvicorn's dictConfig (when something applied it) keeps its loggers to multi-line handlers of its own.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
