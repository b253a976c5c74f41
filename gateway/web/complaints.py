"""**Pengaduan**: the list with search and filters, newest first, paged; one complaint with its follow-ups,
attachments and (admins only) the raw inbox payload it came from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import Select, select
from sqlmodel import Session, col

from gateway.context import AttachmentFiles
from gateway.web import lifecycle_view
from gateway.web.labels import CHANNELS, SOURCES, STATUSES
from gateway.web.render import render, zone_of
from gateway.web.security import SignedIn, WebError
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries
from sinks.store.models import Complaint

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25


@dataclass(frozen=True)
class Filters:
    q: str = ""
    channel: str = ""
    source: str = ""
    status: str = ""
    category: str = ""
    start: date | None = None
    end: date | None = None

    def query_string(self, **extra: str) -> str:
        pairs = {
            "q": self.q,
            "kanal": self.channel,
            "sumber": self.source,
            "status": self.status,
            "kategori": self.category,
            "dari": self.start.isoformat() if self.start else "",
            "sampai": self.end.isoformat() if self.end else "",
            **extra,
        }
        return urlencode({key: value for key, value in pairs.items() if value})


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight of a local (WIB) day as an aware datetime: the store compares in UTC."""
    return datetime.combine(day, time.min, tzinfo=zone)


def filtered(filters: Filters, zone: ZoneInfo) -> Select[Complaint]:
    query = select(Complaint)
    for column, value in (
        (Complaint.channel, filters.channel),
        (Complaint.source, filters.source),
        (Complaint.status, filters.status),
        (Complaint.category, filters.category),
    ):
        if value:
            query = query.where(col(column) == value)
    if filters.start:
        query = query.where(col(Complaint.received_at) >= day_start(filters.start, zone))
    if filters.end:
        query = query.where(col(Complaint.received_at) < day_start(filters.end + timedelta(days=1), zone))
    if filters.q.strip():
        query = query.where(queries.matching_text(filters.q))
    return query


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise WebError(400, f"Tanggal {name} tidak dikenali: {value}") from None


Text = Annotated[str, Query(max_length=200)]


@router.get("/pengaduan")
def complaint_list(
    request: Request,
    staff: SignedIn,
    q: Text = "",
    kanal: Text = "",
    sumber: Text = "",
    status: Text = "",
    kategori: Text = "",
    dari: Text = "",
    sampai: Text = "",
    cursor: Text = "",
) -> Response:
    filters = Filters(q, kanal, sumber, status, kategori, _date(dari, "dari"), _date(sampai, "sampai"))
    with request.app.state.gateway.store.read() as session:
        try:
            page = queries.page_of(session, filtered(filters, zone_of(request)), cursor or None, PAGE_SIZE)
        except ValueError:
            raise WebError(400, "Halaman tidak dikenali; mulai lagi dari halaman pertama.") from None
        records = [queries.complaint_record(c) for c in page.items]
    context = {
        "filters": filters,
        "records": records,
        "next_link": f"/pengaduan?{filters.query_string(cursor=page.next_cursor)}" if page.next_cursor else None,
        "first_link": f"/pengaduan?{filters.query_string()}" if cursor else None,
        "channels": CHANNELS,
        "sources": SOURCES,
        "statuses": STATUSES,
        "categories": request.app.state.gateway.config.categories,
    }
    return render(request, "complaints.html", context, staff)


def _complaint(session: Session, tracking_id: str) -> Complaint:
    canonical = canonical_tracking_id(tracking_id)
    complaint = queries.complaint_by_tracking_id(session, canonical) if canonical else None
    if complaint is None:
        raise WebError(404, f"Tidak ada pengaduan {tracking_id}.")
    return complaint


def provenance(session: Session, complaint: Complaint) -> dict[str, Any] | None:
    """The raw inbox row behind a complaint, for admins; withheld for anonymous reporters (it names them)."""
    if complaint.anonymity == "anonymous":
        return None
    row = queries.inbox_row(session, complaint.inbox_id)
    if row is None:
        return None
    return {
        "id": row.id,
        "channel": row.channel,
        "provider": row.provider,
        "external_id": row.external_id,
        "received_at": row.received_at,
        "raw": row.raw.decode("utf-8", errors="replace"),
        "headers": json.dumps(row.headers, ensure_ascii=False, indent=2),
        "meta": json.dumps(row.meta, ensure_ascii=False, indent=2),
    }


@router.get("/pengaduan/{tracking_id}")
def complaint_detail(request: Request, staff: SignedIn, tracking_id: str) -> Response:
    with request.app.state.gateway.store.read() as session:
        complaint = _complaint(session, tracking_id)
        follow_ups = session.execute(
            select(Complaint)
            .where(col(Complaint.parent_tracking_id) == complaint.tracking_id)
            .order_by(col(Complaint.received_at))
        ).scalars()
        context = {
            "record": queries.complaint_record(complaint),
            "follow_ups": [queries.complaint_record(c) for c in follow_ups],
            "replies": queries.replies_of(session, complaint.tracking_id),
            # Attachments still being fetched, or given up on (replayable from /gagal as media-<id>).
            "media_jobs": [
                {
                    "id": f"media-{job.id}",
                    "status": job.status,
                    "attempts": job.attempts,
                    "error": job.last_error,
                    "content_type": job.descriptor.get("content_type") or job.descriptor.get("mime_type"),
                }
                for job in queries.media_jobs_for(session, complaint.tracking_id)
            ],
            "show_provenance": staff.can("admin"),
            "provenance": provenance(session, complaint) if staff.can("admin") else None,
            **lifecycle_view.detail_context(session, request.app.state.gateway.config, complaint, staff),
        }
    return render(request, "complaint.html", context, staff)


@router.get("/pengaduan/{tracking_id}/lampiran/{sha256}")
def attachment(request: Request, staff: SignedIn, tracking_id: str, sha256: str) -> Response:
    gateway = request.app.state.gateway
    with gateway.store.read() as session:
        complaint = _complaint(session, tracking_id)
    # Only a file the complaint lists: the hash in the URL is never trusted as a path on its own.
    listed = next((a for a in complaint.attachments if a.get("sha256") == sha256), None)
    if listed is None:
        raise WebError(404, "Lampiran tidak ditemukan.")
    path = AttachmentFiles(Path(gateway.config.data_dir)).path(sha256)
    if not path.is_file():
        raise WebError(404, "Berkas lampiran tidak ada di penyimpanan.")
    # Always a download, never rendered in our origin: an uploaded HTML file must not run as our page.
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=listed.get("filename") or sha256,
        content_disposition_type="attachment",
    )
