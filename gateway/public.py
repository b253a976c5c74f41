"""The doors without a sign-in (``/lapor``, ``/cek``, ``/api/v1/public``): their abuse rules and the public view.

Both the web form and the apps' API go through here: a per-client rate
limit, body and upload limits with the file type decided by the bytes, the
signed form token (too fast, too old, forged), and one path into the inbox.
A refusal is a ``Refused`` with an Indonesian message and stores nothing;
files are kept only once every check has passed.

The rate limiter counts in this process's memory (``limits``' moving
window): behind a load balancer each instance counts for itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import secrets
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import filetype
import structlog
from fastapi import Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from channels import manual, webform
from channels.base import InboxItem
from gateway import entry, lifecycle
from gateway.config import Config
from gateway.context import AttachmentFiles, DatabaseState
from gateway.logs import mask
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger(__name__)

REFUSED = "public.refused"
SUBMITTED = "public.submitted"
FORM_SECRET_KEY = "web:form_secret"

TOO_MANY = "Terlalu banyak permintaan dari alamat Anda. Tunggu sebentar, lalu coba lagi."
TOO_BIG = "Kiriman terlalu besar. Lampirkan paling banyak {files} berkas, masing-masing paling besar {mb} MB."
NOT_FOUND = "Laporan dengan nomor itu tidak ditemukan. Periksa kembali nomor laporan Anda (contoh: LPR-7K3Q9X)."
FORM_EXPIRED = "Formulir ini sudah kedaluwarsa. Muat ulang halaman, lalu kirim lagi."
FORM_REFUSED = "Formulir tidak dapat diproses. Muat ulang halaman, lalu kirim lagi."
TOO_FAST = "Formulir terkirim terlalu cepat. Periksa kembali isian Anda, lalu kirim lagi."


class Refused(Exception):
    """A request the doors will not take: ``status`` and the one-line Indonesian ``message`` to show."""

    def __init__(self, status: int, message: str, reason: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str | None
    content_type: str  # from the bytes


class Doors:
    """What the public doors of one app keep between requests: the limiter, the signer, the file store."""

    def __init__(self, gateway: Gateway) -> None:
        web = gateway.config.web
        self.gateway = gateway
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.submit_limits: list[RateLimitItem] = parse_many(web.rate_limit)
        self.lookup_limits: list[RateLimitItem] = parse_many(web.lookup_rate_limit)
        self.trusted = [ipaddress.ip_network(each, strict=False) for each in gateway.config.http.trusted_proxies]
        self.files = AttachmentFiles(gateway.config.data_dir)
        self._signer: URLSafeTimedSerializer | None = None

    # ---- who is asking ----------------------------------------------------------------------

    def client(self, request: Request) -> str:
        """The peer's address; behind a trusted proxy, the nearest X-Forwarded-For hop that is not one."""
        peer = request.client.host if request.client else "unknown"
        if not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer

    def _is_trusted(self, address: str) -> bool:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self.trusted)

    def limit(self, kind: str, client: str) -> None:
        """Count one request of ``kind`` (``submit`` or ``lookup``) for ``client``; 429 past the limit."""
        items = self.submit_limits if kind == "submit" else self.lookup_limits
        for item in items:
            if not self.limiter.hit(item, kind, client):
                reset = self.limiter.get_window_stats(item, kind, client).reset_time
                raise Refused(429, TOO_MANY, f"{kind} rate limit", retry_after=max(1, math.ceil(reset - time.time())))

    # ---- the signed form token --------------------------------------------------------------

    def _serializer(self) -> URLSafeTimedSerializer:
        if self._signer is None:
            self._signer = URLSafeTimedSerializer(self._secret(), salt="lapor-public-form")
        return self._signer

    def _secret(self) -> str:
        configured = self.gateway.config.web.form_secret.get_secret_value()
        if configured:
            return configured
        # One secret for every instance on the same store: a form rendered by one is accepted by another.
        state = DatabaseState(self.gateway.store)
        found = state.get(FORM_SECRET_KEY)
        if not found:
            with contextlib.suppress(IntegrityError):  # another instance wrote it first
                state.put(FORM_SECRET_KEY, secrets.token_urlsafe(32))
            found = state.get(FORM_SECRET_KEY)
        return str(found)

    def form_token(self, csrf: str) -> str:
        """A token for one rendering of the form: a fresh nonce (the submission's id), the time, the CSRF value."""
        return str(self._serializer().dumps({"n": uuid.uuid4().hex, "c": csrf}))

    def check_form_token(self, token: str, csrf: str) -> str:
        """The submission id of a good token; refused when forged, expired, for another browser or too fast."""
        web = self.gateway.config.web
        try:
            data, signed_at = self._serializer().loads(
                token, max_age=web.form_max_age_minutes * 60, return_timestamp=True
            )
        except SignatureExpired:
            raise Refused(400, FORM_EXPIRED, "form token expired") from None
        except BadSignature:
            raise Refused(403, FORM_REFUSED, "form token forged") from None
        if not isinstance(data, dict) or not secrets.compare_digest(str(data.get("c", "")), csrf):
            raise Refused(403, FORM_REFUSED, "form token of another browser")
        if time.time() - signed_at.timestamp() < web.min_fill_seconds:
            raise Refused(400, TOO_FAST, "form submitted too fast")
        return f"form:{data['n']}"

    # ---- bodies and files -------------------------------------------------------------------

    def too_big(self) -> Refused:
        web = self.gateway.config.web
        message = TOO_BIG.format(files=web.max_files, mb=web.max_file_bytes // (1024 * 1024))
        return Refused(413, message, "body over the limit")

    async def read_body(self, request: Request) -> bytes:
        """The body, refused (413) as soon as it passes ``web.max_body_bytes``: never read whole first."""
        limit = self.gateway.config.web.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self.too_big()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise self.too_big()
            chunks.append(chunk)
        return b"".join(chunks)

    async def multipart(self, request: Request, body: bytes) -> FormData:
        async def stream() -> AsyncGenerator[bytes, None]:
            yield body

        web = self.gateway.config.web
        parser = MultiPartParser(request.headers, stream(), max_files=web.max_files + 1, max_fields=50)
        try:
            return await parser.parse()
        except MultiPartException as exc:
            if "Too many" in exc.message or "exceeded" in exc.message:
                raise Refused(413, self.too_big().message, exc.message) from None
            raise Refused(400, FORM_REFUSED, exc.message) from None

    async def uploads(self, files: Sequence[UploadFile]) -> tuple[list[Upload], str | None]:
        """The chosen files with their type from the bytes, or what is wrong with them (Indonesian)."""
        web = self.gateway.config.web
        chosen = [each for each in files if each.filename or each.size]
        if len(chosen) > web.max_files:
            return [], f"paling banyak {web.max_files} berkas"
        kept: list[Upload] = []
        for upload in chosen:
            data = await upload.read(web.max_file_bytes + 1)
            name = _safe_filename(upload.filename)
            if len(data) > web.max_file_bytes:
                return [], f"{name or 'berkas'} lebih dari {web.max_file_bytes // (1024 * 1024)} MB"
            if not data:
                return [], f"{name or 'berkas'} kosong"
            kind = filetype.guess_mime(data)
            if kind not in webform.ALLOWED_TYPES:
                return [], f"{name or 'berkas'} bukan foto (JPEG, PNG, WebP, HEIC) atau PDF"
            kept.append(Upload(data, name, str(kind)))
        return kept, None

    async def keep(self, uploads: Sequence[Upload]) -> list[dict[str, Any]]:
        """Write the files (by sha256; fsynced) once the submission has passed every check."""
        kept = []
        for upload in uploads:
            attachment = await asyncio.to_thread(self.files, upload.data, upload.filename, upload.content_type)
            kept.append(
                {
                    "filename": attachment.filename,
                    "content_type": attachment.content_type,
                    "size": attachment.size,
                    "sha256": attachment.sha256,
                }
            )
        return kept

    # ---- into the inbox ---------------------------------------------------------------------

    async def submit(self, report: dict[str, Any], submission_id: str) -> entry.EntryResult:
        raw = json.dumps(report, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        item = InboxItem(
            channel=webform.CHANNEL,
            provider=webform.PROVIDER,
            external_id=submission_id,
            raw=raw,
            # No address, no user agent: an anonymous report must not be traceable from its row.
            headers={"content-type": "application/json"},
            meta={"submission_id": submission_id},
        )
        result = await entry.accept_and_wait(self.gateway, item)
        log.info(SUBMITTED, via=report.get("via"), status=result.status, tracking_id=result.tracking_id)
        return result

    # ---- the public view --------------------------------------------------------------------

    def public_view(self, tracking_id: str) -> dict[str, Any] | None:
        """What anyone holding the tracking id may see, or None for any id that is not a complaint's."""
        canonical = canonical_tracking_id(tracking_id)
        if canonical is None:
            return None
        config = self.gateway.config
        with self.gateway.store.read() as session:
            complaint = queries.complaint_by_tracking_id(session, canonical)
            if complaint is None:
                return None
            return public_record(complaint, config, lifecycle.public_timeline(session, config, canonical))


def public_record(complaint: Any, config: Config, steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Status, agency and the public timeline (``lifecycle.public_timeline``), and nothing personal.

    No name, phone, e-mail or chat id ever; the summary only for a report that
    is not confidential, and with numbers and addresses in it masked.
    """
    status_texts = config.replies.status_texts
    summary = None
    if complaint.anonymity != "confidential":
        text = complaint.subject or complaint.body or ""
        summary = mask(text if len(text) <= 200 else text[:199].rstrip() + "…")
    received = queries.iso(complaint.received_at)
    arrived = {
        "at": received,
        "status": "received",
        "status_text": status_texts.get("received", "received"),
        "agency_name": None,
        "public_note": None,
        "reason_text": None,
    }
    agency = getattr(complaint, "agency", None)
    return {
        "tracking_id": complaint.tracking_id,
        "status": complaint.status,
        "status_text": status_texts.get(complaint.status, complaint.status),
        "agency": agency,
        "agency_name": lifecycle.agency_name(config, agency) if agency else None,
        "category": complaint.category,
        "region_name": complaint.region_name,
        "received_at": received,
        "summary": summary,
        "confidential": complaint.anonymity == "confidential",
        "timeline": [arrived, *steps],
    }


def report_from_values(
    values: Mapping[str, str], attachments: list[dict[str, Any]], via: str
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The ``PublicReport`` body for the form's fields (the API's multipart uses the same names), or the errors."""
    anonymity = {"publik": "public", "rahasia": "confidential", "anonim": "anonymous"}.get(
        values.get("kerahasiaan", "").strip().lower(), values.get("kerahasiaan", "").strip().lower() or "public"
    )
    location = {
        "text": values.get("lokasi", "").strip() or None,
        "lat": _number(values.get("lat", "")),
        "lon": _number(values.get("lon", "")),
    }
    candidate: dict[str, Any] = {
        "body": values.get("isi", ""),
        "subject": values.get("judul"),
        "location": location if any(value is not None for value in location.values()) else None,
        "reporter": {
            "name": values.get("nama"),
            "phone": values.get("telepon"),
            "email": values.get("email"),
            "anonymity": anonymity,
        },
        "consent": values.get("persetujuan", "").strip().lower() in ("1", "ya", "true", "on", "yes"),
        "attachments": attachments,
        "via": via,
    }
    report, errors = checked_report(candidate)
    return report, {_FIELD_OF.get(place, "isi"): message for place, message in reversed(errors.items())}


# The form's field for each place in the report body (the API's multipart uses the same names).
FIELDS = ("isi", "judul", "lokasi", "lat", "lon", "nama", "telepon", "email", "kerahasiaan", "persetujuan")
_FIELD_OF = {
    "body": "isi",
    "subject": "judul",
    "location.text": "lokasi",
    "location.lat": "lat",
    "location.lon": "lon",
    "location": "lat",
    "reporter.name": "nama",
    "reporter.phone": "telepon",
    "reporter.email": "email",
    "reporter.anonymity": "kerahasiaan",
    "consent": "persetujuan",
}


def checked_report(candidate: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """A validated body whose reporter holds no identity when anonymous; or the errors by dotted place."""
    try:
        report = webform.PublicReport.model_validate(dict(candidate))
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            errors.setdefault(".".join(str(part) for part in error["loc"]) or "body", _indonesian(error))
        return None, errors
    report = manual.anonymous_copy(report) if report.reporter.anonymity == "anonymous" else report
    return report.model_dump(mode="json"), {}


def _indonesian(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    kind = error["type"]
    if kind in ("string_too_long",):
        return "terlalu panjang"
    if kind in ("float_parsing", "greater_than_equal", "less_than_equal"):
        return "bukan angka koordinat yang sah"
    if kind == "literal_error":
        return "pilih publik, rahasia atau anonim"
    if kind in ("string_too_short", "missing"):
        return "wajib diisi"
    return message


def _number(value: str | None) -> float | str | None:
    text = (value or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _safe_filename(name: str | None) -> str | None:
    """Only the last path segment, printable and short: a name is shown to staff, never trusted."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip()
    return cleaned[:120] or None


PUBLIC_PATHS = ("/lapor", "/api/v1/public/reports")


def public_body_limits(max_body_bytes: int) -> dict[str, int]:
    """The HTTP body limits of the public doors (``gateway.limits.BodyLimit``): room for the uploads."""
    return dict.fromkeys(PUBLIC_PATHS, max_body_bytes)


def doors_of(request: Request) -> Doors:
    """The app's ``Doors``, made on first use; refused (404) when ``channels.web`` is switched off."""
    state = request.app.state
    if not state.gateway.config.channel(webform.CHANNEL).enabled:
        raise Refused(404, "Halaman ini tidak tersedia.", "channels.web is off")
    if getattr(state, "public_doors", None) is None:
        state.public_doors = Doors(state.gateway)
    found: Doors = state.public_doors
    return found


def not_found() -> Refused:
    """The one answer for an unknown id, a malformed one and an id of someone else's complaint alike."""
    return Refused(404, NOT_FOUND, "unknown tracking id")
