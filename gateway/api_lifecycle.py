"""``/api/v1`` for the lifecycle: a complaint's events (read, post), and the agency's own complaints.

Admins move any complaint; an ``agency`` token (a liaison officer, or the agency's own system pushing
updates) moves only complaints that are with its agency, and sees nothing else. Every change goes
through ``gateway.lifecycle``. ``Idempotency-Key`` works as for manual entry: a repeat returns the
same event, a reuse with another body is 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import col

from gateway import lifecycle
from gateway.api import AgencyOrAdmin, AnyRole, _gateway
from gateway.auth import Principal
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries
from sinks.store.models import Complaint, utcnow

router = APIRouter(prefix="/api/v1")


class EventIn(BaseModel):
    """A status change (``to``) or a correction (``category`` / ``region_code`` without ``to``)."""

    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(default=None, max_length=32)
    public_note: str | None = Field(default=None, max_length=4000)
    internal_note: str | None = Field(default=None, max_length=4000)
    agency: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=32)
    duplicate_of: str | None = Field(default=None, max_length=32)
    category: str | None = Field(default=None, max_length=64)
    region_code: str | None = Field(default=None, max_length=16)


def actor_of(principal: Principal) -> lifecycle.Actor:
    if principal.role == "agency":
        return lifecycle.Actor("agency", principal.name, agency=principal.agency)
    return lifecycle.Actor("staff", principal.name, admin=principal.role == "admin")


def _refusal(exc: lifecycle.LifecycleError) -> JSONResponse:
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, lifecycle.Refused):
        body.update(current=exc.current, allowed=list(exc.allowed))
    return JSONResponse(body, status_code=exc.status)


def _same_request(event: dict[str, Any], given: EventIn) -> bool:
    """Whether a repeated Idempotency-Key came with the body that made its event."""
    pairs = [
        (given.public_note, event["public_note"]),
        (given.reason, event["reason"]),
        (given.category, event["category"]),
        (given.region_code, event["region_code"]),
    ]
    if given.to is not None and given.to != event["to"]:
        return False
    return all((want or None) == (had or None) for want, had in pairs if want is not None)


def _visible(principal: Principal, complaint: Complaint | None, canonical: str) -> Complaint:
    if complaint is None:
        raise HTTPException(404, f"no complaint {canonical}")
    if principal.role == "agency" and complaint.agency != principal.agency:
        # Not "not found": the agency may know the id; it simply is not theirs.
        raise HTTPException(403, f"{canonical} is not with agency {principal.agency}")
    return complaint


def _canonical(tracking_id: str) -> str:
    canonical = canonical_tracking_id(tracking_id)
    if canonical is None:
        raise HTTPException(404, f"{tracking_id!r} is not a tracking id")
    return canonical


@router.post("/complaints/{tracking_id}/events", status_code=201)
async def post_event(
    request: Request,
    principal: AgencyOrAdmin,
    tracking_id: str,
    given: EventIn,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Move a complaint along the lifecycle (or correct its category/region); 409 names what is allowed."""
    gateway = _gateway(request)
    change = lifecycle.Change(
        **given.model_dump(),
        source="api",
        dedupe_key=f"api:{principal.name}:{idempotency_key}" if idempotency_key else None,
    )
    try:
        applied = await run_in_threadpool(
            lifecycle.transition, gateway.store, gateway.config, tracking_id, change, actor_of(principal)
        )
    except lifecycle.LifecycleError as exc:
        return _refusal(exc)
    if not applied.created:
        if not _same_request(applied.event, given):
            return JSONResponse({"detail": "Idempotency-Key was already used with a different body"}, 422)
        return JSONResponse(
            {"event": applied.event, "record": applied.record}, 200, headers={"Idempotent-Replayed": "true"}
        )
    gateway.worker.wake.set()  # the citizen's message and the forwards are in the outbox now
    return JSONResponse({"event": applied.event, "record": applied.record}, status_code=201)


@router.get("/complaints/{tracking_id}/events")
def get_events(request: Request, principal: AnyRole, tracking_id: str) -> dict[str, Any]:
    canonical = _canonical(tracking_id)
    with _gateway(request).store.read() as session:
        _visible(principal, queries.complaint_by_tracking_id(session, canonical), canonical)
        staff = principal.role in ("agent", "admin")
        return {"items": [lifecycle.event_view(e, internal=staff) for e in lifecycle.events_of(session, canonical)]}


@router.get("/agency/complaints")
def agency_complaints(
    request: Request,
    principal: AgencyOrAdmin,
    agency: Annotated[str | None, Query(max_length=64, description="admins: which agency")] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The complaints that are with the agency, overdue first, then oldest (an agency sees only its own)."""
    code = principal.agency if principal.role == "agency" else agency
    if not code:
        raise HTTPException(422, "admins name the agency: ?agency=CODE")
    now = utcnow()
    query = select(Complaint).where(col(Complaint.agency) == code)
    if status:
        query = query.where(col(Complaint.status) == status)
    with _gateway(request).store.read() as session:
        rows = session.execute(lifecycle.queue_order(query, now).limit(limit)).scalars()
        items = [
            {**lifecycle.record_with_events(session, c, internal=False), "overdue": lifecycle.is_overdue(c, now)}
            for c in rows
        ]
    return {"agency": code, "items": items}


@router.get("/agency/complaints/{tracking_id}")
def agency_complaint(request: Request, principal: AgencyOrAdmin, tracking_id: str) -> dict[str, Any]:
    canonical = _canonical(tracking_id)
    with _gateway(request).store.read() as session:
        complaint = _visible(principal, queries.complaint_by_tracking_id(session, canonical), canonical)
        return lifecycle.record_with_events(session, complaint, internal=principal.role == "admin")
