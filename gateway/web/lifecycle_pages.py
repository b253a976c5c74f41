"""The lifecycle in the web pages: the buttons and timeline on a complaint, the verification queue
(**Verifikasi**) and an agency's inbox (**Kotak masuk instansi**). Every button posts to one route that
calls ``gateway.lifecycle``; the form carries a one-time key, so a double click makes one event."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from gateway import lifecycle
from gateway.config import Config
from gateway.web import complaints, lifecycle_view
from gateway.web.labels import STATUSES
from gateway.web.render import render
from gateway.web.security import AdminOnly, AgencyOrAdmin, AnyAccount, WebError, checked_form
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries
from sinks.store.models import Complaint, utcnow

router = APIRouter(include_in_schema=False)
QUEUE_LIMIT = 200


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _in_indonesian(exc: lifecycle.LifecycleError) -> str:
    if isinstance(exc, lifecycle.Refused):
        allowed = ", ".join(STATUSES.get(s, s) for s in exc.allowed) or "tidak ada (status akhir)"
        return f"Status {STATUSES.get(exc.current, exc.current)} tidak dapat diubah ke sana. Yang boleh: {allowed}."
    if isinstance(exc, lifecycle.Forbidden):
        return f"Anda tidak berwenang melakukan perubahan ini ({exc})."
    return f"Perubahan tidak dapat disimpan: {exc}."


@router.post("/pengaduan/{tracking_id}/status")
async def change_status(request: Request, staff: AnyAccount, tracking_id: str) -> Response:
    form = await checked_form(request, staff)
    gateway = request.app.state.gateway
    to = _text(form, "to")
    change = lifecycle.Change(
        to=to,
        public_note=_text(form, "public_note"),
        internal_note=_text(form, "internal_note"),
        agency=_text(form, "agency") if to == lifecycle.FORWARDED else None,
        reason=_text(form, "reason") if to == lifecycle.REJECTED else None,
        duplicate_of=_text(form, "duplicate_of") if _text(form, "reason") == "duplicate" else None,
        category=_text(form, "category"),
        region_code=_text(form, "region_code"),
        source="web",
        dedupe_key=f"web:{staff.username}:{_text(form, 'form_key')}" if _text(form, "form_key") else None,
    )
    try:
        await run_in_threadpool(
            lifecycle.transition, gateway.store, gateway.config, tracking_id, change, lifecycle_view.actor_of(staff)
        )
    except lifecycle.LifecycleError as exc:
        raise WebError(exc.status, _in_indonesian(exc)) from None
    gateway.worker.wake.set()
    canonical = canonical_tracking_id(tracking_id) or tracking_id
    back = f"/instansi/pengaduan/{canonical}" if staff.role == "agency" else f"/pengaduan/{canonical}"
    return RedirectResponse(back, status_code=303)


def _rows(session: Session, query: Any) -> list[dict[str, Any]]:
    now = utcnow()
    found = session.execute(lifecycle.queue_order(query, now).limit(QUEUE_LIMIT)).scalars()
    return [{**queries.complaint_record(c), "overdue": lifecycle.is_overdue(c, now)} for c in found]


@router.get("/verifikasi")
def verification_queue(request: Request, staff: AdminOnly) -> Response:
    """Received complaints to verify and verified ones to route: overdue first, then urgent, then oldest."""
    with request.app.state.gateway.store.read() as session:
        waiting = _rows(session, select(Complaint).where(col(Complaint.status) == lifecycle.RECEIVED))
        to_route = _rows(session, select(Complaint).where(col(Complaint.status) == lifecycle.VERIFIED))
    context = {"waiting": waiting, "to_route": to_route}
    return render(request, "verification.html", context, staff)


@router.get("/instansi")
def agency_inbox(request: Request, staff: AgencyOrAdmin, kode: str = "") -> Response:
    """An agency's complaints: open ones first (overdue, then oldest), then those already answered."""
    config: Config = request.app.state.gateway.config
    code = staff.agency if staff.role == "agency" else (kode or next(iter(config.agencies), ""))
    if code not in config.agencies:
        raise WebError(404, "Instansi tidak dikenal.")
    mine = select(Complaint).where(col(Complaint.agency) == code)
    with request.app.state.gateway.store.read() as session:
        open_rows = _rows(session, mine.where(col(Complaint.status).in_([lifecycle.FORWARDED, lifecycle.IN_PROGRESS])))
        answered = _rows(session, mine.where(col(Complaint.status).in_([lifecycle.RESOLVED, lifecycle.CLOSED])))
    context = {
        "agency_code": code,
        "agency_name": config.agencies[code].name,
        "open_rows": open_rows,
        "answered": answered,
        "agencies": {c: a.name for c, a in config.agencies.items()} if staff.role == "admin" else {},
    }
    return render(request, "agency_inbox.html", context, staff)


@router.get("/instansi/pengaduan/{tracking_id}")
def agency_complaint(request: Request, staff: AgencyOrAdmin, tracking_id: str) -> Response:
    """What the liaison officer sees of one complaint: no provenance, no internal notes."""
    gateway = request.app.state.gateway
    canonical = canonical_tracking_id(tracking_id)
    with gateway.store.read() as session:
        complaint = queries.complaint_by_tracking_id(session, canonical) if canonical else None
        if complaint is None:
            raise WebError(404, f"Tidak ada pengaduan {tracking_id}.")
        if staff.role == "agency" and complaint.agency != staff.agency:
            raise WebError(403, "Pengaduan ini tidak diteruskan ke instansi Anda.")
        context = {
            "record": queries.complaint_record(complaint),
            "follow_ups": [],
            "show_provenance": False,
            "provenance": None,
            "agency_view": True,
            **lifecycle_view.detail_context(session, gateway.config, complaint, staff),
        }
    return render(request, "complaint.html", context, staff)


@router.get("/instansi/pengaduan/{tracking_id}/lampiran/{sha256}")
def agency_attachment(request: Request, staff: AgencyOrAdmin, tracking_id: str, sha256: str) -> Response:
    """A photo or file of a complaint that is with the officer's agency (the staff route checks the file)."""
    canonical = canonical_tracking_id(tracking_id)
    with request.app.state.gateway.store.read() as session:
        found = queries.complaint_by_tracking_id(session, canonical) if canonical else None
    if found is None or (staff.role == "agency" and found.agency != staff.agency):
        raise WebError(403, "Pengaduan ini tidak diteruskan ke instansi Anda.")
    return complaints.attachment(request, staff, tracking_id, sha256)
