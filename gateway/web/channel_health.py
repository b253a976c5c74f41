"""**Kanal** figures: traffic per enabled channel and a warning when one that usually flows falls silent.

``channels.<x>.silence_alert_minutes`` is read from a channel's settings when
its model has the key; no channel model has it yet, so the web falls back to
``DEFAULT_SILENCE_ALERT_MINUTES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from gateway.config import Config
from gateway.registry import CHANNELS
from sinks.store.db import Store
from sinks.store.models import FAILED, InboxMessage, OutboxMessage

DEFAULT_SILENCE_ALERT_MINUTES = 60
# The baseline a channel's usual flow is measured over.
BASELINE = timedelta(days=7)


@dataclass(frozen=True)
class ChannelHealth:
    name: str
    provider: str
    last_hour: int
    last_day: int
    last_message_at: datetime | None
    failed_inbox: int
    failed_outbox: int
    silence_minutes: int
    silent: bool


def silence_minutes(config: Config, name: str) -> int:
    value = getattr(config.channel(name), "silence_alert_minutes", None)
    return int(value) if value else DEFAULT_SILENCE_ALERT_MINUTES


def is_silent(baseline_count: int, last_message_at: datetime | None, window: timedelta, now: datetime) -> bool:
    """Silent for longer than ``window`` although the baseline week would have brought at least one message in it."""
    expected = baseline_count * (window / BASELINE)
    quiet_since = last_message_at or now - BASELINE
    return expected >= 1 and now - quiet_since > window


def _count(session: Session, *conditions: ColumnElement[bool]) -> int:
    return int(session.execute(select(func.count()).select_from(InboxMessage).where(*conditions)).scalar_one())


def channel_health(store: Store, config: Config, now: datetime) -> list[ChannelHealth]:
    figures: list[ChannelHealth] = []
    received_at = col(InboxMessage.received_at)
    with store.read() as session:
        for name in config.enabled_channels():
            provider = CHANNELS[name].provider
            of_provider = col(InboxMessage.provider) == provider
            window = timedelta(minutes=silence_minutes(config, name))
            last = session.execute(select(func.max(received_at)).where(of_provider)).scalar_one()
            baseline = _count(session, of_provider, received_at >= now - window - BASELINE, received_at < now - window)
            failed_out = session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.target) == name, col(OutboxMessage.status) == FAILED)
            ).scalar_one()
            figures.append(
                ChannelHealth(
                    name=name,
                    provider=provider,
                    last_hour=_count(session, of_provider, received_at >= now - timedelta(hours=1)),
                    last_day=_count(session, of_provider, received_at >= now - timedelta(days=1)),
                    last_message_at=last,
                    failed_inbox=_count(session, of_provider, col(InboxMessage.status) == FAILED),
                    failed_outbox=int(failed_out),
                    silence_minutes=int(window.total_seconds() // 60),
                    silent=is_silent(baseline, last, window, now),
                )
            )
    return figures
