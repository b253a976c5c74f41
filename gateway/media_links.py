"""Signed, expiring public links to a complaint's photo, for agency systems (Open311 ``media_url``).

The link names the complaint and the file's sha256, carries its expiry and an HMAC-SHA256 over both made
with ``lifecycle.media_secret``; nothing else about the complaint is reachable through it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from gateway.context import AttachmentFiles
from sinks.store import queries
from sinks.store.models import utcnow

router = APIRouter(include_in_schema=False)


def _signature(secret: str, tracking_id: str, sha256: str, expires: int) -> str:
    message = f"{tracking_id}/{sha256}/{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_url(public_url: str, secret: str, tracking_id: str, sha256: str, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    query = urlencode({"expires": expires, "sig": _signature(secret, tracking_id, sha256, expires)})
    return f"{public_url}/media/{tracking_id}/{sha256}?{query}"


def valid(secret: str, tracking_id: str, sha256: str, expires: int, sig: str, now: datetime | None = None) -> bool:
    if expires < int((now or utcnow()).timestamp()):
        return False
    return hmac.compare_digest(sig, _signature(secret, tracking_id, sha256, expires))


@router.get("/media/{tracking_id}/{sha256}")
def media(request: Request, tracking_id: str, sha256: str, expires: int = 0, sig: str = "") -> FileResponse:
    gateway = request.app.state.gateway
    secret = gateway.config.lifecycle.media_secret
    if secret is None or not valid(secret.get_secret_value(), tracking_id, sha256, expires, sig):
        raise HTTPException(403, "this link is not valid or has expired")
    with gateway.store.read() as session:
        complaint = queries.complaint_by_tracking_id(session, tracking_id)
    listed = next((a for a in (complaint.attachments if complaint else []) if a.get("sha256") == sha256), None)
    path = AttachmentFiles(Path(gateway.config.data_dir)).path(sha256)
    if listed is None or not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, media_type=listed.get("content_type") or "application/octet-stream")
