"""**Laporan baru**: an agent types in a report while the caller is on the line, then reads out its tracking id.

The form posts the same manual-entry body the API takes and goes through
``gateway.entry.submit`` — the inbox, the worker, the store — like every
channel. A hidden idempotency key makes a double click one complaint.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from channels import csv_import
from gateway import entry
from gateway.web.render import render
from gateway.web.security import SignedIn, Staff, WebError, checked_form
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries

router = APIRouter(include_in_schema=False)

FIELDS = ("isi", "judul", "sumber", "nama", "telepon", "email", "kerahasiaan", "kategori", "lokasi", "lat", "lon")


def _form(
    request: Request,
    staff: Staff,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    key: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "values": values or {"sumber": "phone", "kerahasiaan": "public"},
        "errors": errors or {},
        "idempotency_key": key or uuid.uuid4().hex,
        "problem": problem,
        "sources": csv_import.SOURCES,
        "anonymity": csv_import.ANONYMITY,
        "categories": request.app.state.gateway.config.categories,
    }
    return render(request, "new_report.html", context, staff, status)


@router.get("/laporan/baru")
def new_report_form(request: Request, staff: SignedIn) -> Response:
    return _form(request, staff)


@router.post("/laporan/baru")
async def new_report(request: Request, staff: SignedIn) -> Response:
    form = await checked_form(request, staff)
    gateway = request.app.state.gateway
    values = {name: str(form.get(name, "")) for name in FIELDS}
    key = str(form.get("idempotency_key", ""))[:200] or None
    raw, errors = csv_import.check_values(values, gateway.config.categories)
    if raw is None:
        return _form(request, staff, values, errors, key, status=422)
    result = await entry.submit(gateway, raw, staff.username, key, "application/json")
    if result.tracking_id is not None:
        return RedirectResponse(f"/laporan/{result.tracking_id}/terkirim", status_code=303)
    if result.status == entry.KEY_REUSED:
        problem = (
            "Formulir ini sudah pernah dikirim dengan isi lain. Periksa daftar pengaduan, "
            "atau kirim sebagai laporan baru."
        )
        return _form(request, staff, values, {}, None, problem, status=409)
    if result.status == entry.PROCESSING:
        return render(request, "report_processing.html", {"inbox_id": result.body.get("inbox_id")}, staff, 202)
    problem = "Laporan belum tersimpan (gangguan sistem). Coba kirim lagi; tidak akan tercatat dua kali."
    return _form(request, staff, values, {}, key, problem, status=503)


@router.get("/laporan/{tracking_id}/terkirim")
def report_sent(request: Request, staff: SignedIn, tracking_id: str) -> Response:
    canonical = canonical_tracking_id(tracking_id)
    with request.app.state.gateway.store.read() as session:
        complaint = queries.complaint_by_tracking_id(session, canonical) if canonical else None
        record = queries.complaint_record(complaint) if complaint else None
    if record is None:
        raise WebError(404, f"Tidak ada laporan {tracking_id}.")
    return render(request, "report_sent.html", {"record": record}, staff)
