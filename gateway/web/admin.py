"""Admin pages: **Gagal** (the dead-letter list, dry run, replay), the replay **Audit** log, and **Kanal**."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from gateway import agency_sync, audit, replay
from gateway.web.channel_health import channel_health
from gateway.web.render import render
from gateway.web.security import AdminOnly, WebError, checked_form
from sinks.store.models import utcnow
from sinks.store.queries import MAX_ID

router = APIRouter(include_in_schema=False)

# Identity fields a manual or CSV body carries: hidden in a raw payload when the reporter chose anonymity.
_IDENTITY = ("name", "phone", "email", "telegram_id")


def masked(data: Any) -> Any:
    """``data`` with every anonymous reporter's identity replaced by dots, however deep it sits."""
    if isinstance(data, list):
        return [masked(item) for item in data]
    if not isinstance(data, dict):
        return data
    result = {key: masked(value) for key, value in data.items()}
    reporter = result.get("reporter")
    if isinstance(reporter, dict) and reporter.get("anonymity") == "anonymous":
        result["reporter"] = {**reporter, **{key: "•••" for key in _IDENTITY if reporter.get(key)}}
    return result


def shown_json(data: Any) -> str:
    return json.dumps(masked(data), ensure_ascii=False, indent=2, default=str)


# Only this much of a raw payload is parsed to pretty-print it; anything bigger or deeper is shown as text.
_MAX_PRETTY_CHARS = 256 * 1024
_MAX_PRETTY_DEPTH = 64


def _depth(data: Any) -> int:
    """How deep ``data`` nests, without recursion (so no payload can exhaust the stack here)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > _MAX_PRETTY_DEPTH:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def shown_raw(text: str) -> str:
    """A raw payload for the page: pretty JSON when it is small, shallow JSON, else the text as it is.

    Never raises: a body of 5,000 ``[`` from a citizen's mail must not break the failed list.
    The template escapes the text.
    """
    if len(text) > _MAX_PRETTY_CHARS:
        return text
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return text if _depth(data) > _MAX_PRETTY_DEPTH else shown_json(data)


def _failed_rows(gateway: Any) -> list[dict[str, Any]]:
    rows = []
    for summary in replay.list_failed(gateway.store):
        view = replay.show_failed(gateway.store, replay.parse_ref(summary["id"])) or summary
        raw = shown_raw(view.get("raw_text") or "") if summary["table"] == "inbox" else shown_json(view.get("payload"))
        rows.append({**summary, "channel": summary.get("channel") or summary.get("target"), "raw": raw})
    return rows


@router.get("/gagal")
def failed_list(
    request: Request, staff: AdminOnly, diantrekan: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None
) -> Response:
    rows = _failed_rows(request.app.state.gateway)
    return render(request, "failed.html", {"rows": rows, "queued": diantrekan}, staff)


async def _selected(request: Request, staff: AdminOnly) -> list[replay.FailedRef]:
    form = await checked_form(request, staff)
    refs = []
    for value in form.getlist("id"):
        try:
            refs.append(replay.parse_ref(str(value)))
        except ValueError:
            raise WebError(400, f"Bukan nomor pesan gagal: {value}") from None
    if not refs:
        raise WebError(400, "Pilih minimal satu pesan.")
    return refs


@router.post("/gagal/pratinjau")
async def failed_preview(request: Request, staff: AdminOnly) -> Response:
    refs = await _selected(request, staff)
    gateway = request.app.state.gateway
    previews = []
    for ref in refs:
        view = await run_in_threadpool(audit.audited_preview, gateway.store, gateway.config, ref, staff.username)
        previews.append({"id": str(ref), "view": masked(view), "json": shown_json(view)})
    return render(request, "preview.html", {"previews": previews, "ids": [str(ref) for ref in refs]}, staff)


@router.post("/gagal/putar-ulang")
async def failed_replay(request: Request, staff: AdminOnly) -> Response:
    refs = await _selected(request, staff)
    gateway = request.app.state.gateway
    queued = 0
    for ref in refs:
        queued += await run_in_threadpool(audit.audited_replay, gateway.store, ref, staff.username)
    gateway.worker.wake.set()
    return RedirectResponse(f"/gagal?diantrekan={queued}", status_code=303)


@router.get("/audit")
def audit_log(
    request: Request, staff: AdminOnly, sebelum: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> Response:
    entries = audit.recent(request.app.state.gateway.store, limit=100, before_id=sebelum)
    older = f"/audit?sebelum={entries[-1].id}" if len(entries) == 100 else None
    return render(request, "audit.html", {"entries": entries, "older": older}, staff)


@router.get("/kanal")
def channels(request: Request, staff: AdminOnly) -> Response:
    gateway = request.app.state.gateway
    figures = channel_health(gateway.store, gateway.config, utcnow())
    sinks = [
        {
            "name": s.name,
            "type": s.type,
            "target": s.url or s.endpoint,
            "disabled": agency_sync.disabled(gateway.store, s.name),
        }
        for s in gateway.config.sinks
    ]
    return render(request, "channels.html", {"figures": figures, "sinks": sinks}, staff)
