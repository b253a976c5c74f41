"""Jinja2 templates and the filters they use (times in the configured zone, WIB by default)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from gateway.web.labels import Labels
from gateway.web.security import Staff
from sinks.store.models import utcnow
from sinks.store.queries import iso

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")

templates = Jinja2Templates(directory=TEMPLATES)


def local_time(value: datetime | str | None, zone: ZoneInfo, with_time: bool = True) -> str:
    """``25 Nov 2026 22:33 WIB``: Indonesian month names, the zone's own abbreviation (records carry ISO text)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    local = value.astimezone(zone)
    day = f"{local.day} {MONTHS[local.month - 1]} {local.year}"
    return f"{day} {local:%H:%M} {local.tzname()}" if with_time else day


@pass_context
def _when(context: Context, value: datetime | str | None) -> str:
    return local_time(value, context["zone"])


@pass_context
def _label(context: Context, code: str | None, dimension: str) -> str:
    labels: Labels = context["labels"]
    return labels(dimension, code)


templates.env.filters["waktu"] = _when
templates.env.filters["label"] = _label


def zone_of(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.gateway.config.http.timezone)


def labels_of(request: Request) -> Labels:
    return Labels(request.app.state.gateway.config.categories)


def render(
    request: Request, name: str, context: dict[str, Any], staff: Staff | None = None, status: int = 200
) -> Response:
    base = {
        "staff": staff,
        "csrf_token": staff.csrf_token if staff else "",
        "zone": zone_of(request),
        "labels": labels_of(request),
        "path": request.url.path,
        # Records carry ISO text: a due date before this one is overdue (lists flag it).
        "now_iso": iso(utcnow()),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
