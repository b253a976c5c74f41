"""What a complaint's page shows of the lifecycle: the timeline and the moves this account may offer."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session

from gateway import lifecycle
from gateway.config import Config
from gateway.web.security import Staff
from sinks.store.models import Complaint

REASONS: dict[str, str] = {
    "not_public_service": "Bukan pelayanan publik",
    "incomplete": "Keterangan belum lengkap",
    "duplicate": "Duplikat laporan lain",
    "out_of_area": "Di luar wilayah",
}
ACTORS: dict[str, str] = {"staff": "Petugas", "agency": "Instansi", "system": "Sistem", "citizen": "Pelapor"}


def actor_of(staff: Staff) -> lifecycle.Actor:
    if staff.role == "agency":
        return lifecycle.Actor("agency", staff.username, agency=staff.agency)
    return lifecycle.Actor("staff", staff.username, admin=staff.role == "admin")


def actions(complaint: Complaint, staff: Staff) -> list[str]:
    """The moves this account may offer on this complaint, by the table and the role."""
    allowed = lifecycle.allowed_moves(complaint.status)
    if staff.role == "admin":
        return list(allowed)
    if staff.role == "agency" and complaint.agency == staff.agency:
        return [to for to in allowed if (complaint.status, to) in lifecycle.AGENCY_MOVES]
    return []


def detail_context(session: Session, config: Config, complaint: Complaint, staff: Staff) -> dict[str, Any]:
    """What the detail page needs for its timeline and buttons."""
    internal = staff.role in ("agent", "admin")
    suggested = lifecycle.suggest_agencies(config, complaint.category, complaint.region_code)
    return {
        "timeline": [lifecycle.event_view(e, internal) for e in lifecycle.events_of(session, complaint.tracking_id)],
        "actions": actions(complaint, staff),
        "agencies": {code: agency.name for code, agency in config.agencies.items()},
        "suggested_agency": suggested[0] if suggested else "",
        "reasons": REASONS,
        "actors": ACTORS,
        "form_key": secrets.token_urlsafe(16),
        "overdue": lifecycle.is_overdue(complaint),
        "agency_name": lifecycle.agency_name(config, complaint.agency) if complaint.agency else None,
        "can_correct": staff.role == "admin",
    }
