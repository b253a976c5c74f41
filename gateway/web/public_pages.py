"""The citizens' pages, no sign-in: ``/lapor`` (the report form) and ``/cek`` (the status page).

Mobile first and usable without JavaScript (``public.js`` only adds the
"pakai lokasi saya" button). The abuse rules live in ``gateway.public``: a
rate limit per client, a double-submit CSRF cookie, a honeypot field, a
signed form token that refuses a form posted faster than a person types,
and body/upload limits. A refusal shows an Indonesian message and stores nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from gateway import entry
from gateway.config import Config
from gateway.public import FIELDS, REFUSED, TOO_BIG, Doors, Refused, doors_of, not_found, report_from_values
from gateway.web.render import render, templates
from gateway.web.security import cookie_options, same_token

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

CSRF_COOKIE = "lapor_form_csrf"
HONEYPOT = "situs"
ANONYMITY = (
    ("publik", "Publik", "Nama Anda boleh terlihat oleh petugas dan instansi yang menangani laporan."),
    (
        "rahasia",
        "Rahasia",
        "Identitas disimpan, tetapi hanya petugas yang bisa melihatnya; "
        "isi laporan tidak ditampilkan di halaman status.",
    ),
    (
        "anonim",
        "Anonim",
        "Identitas tidak disimpan sama sekali. Kami tidak bisa menghubungi Anda; pantau lewat nomor laporan.",
    ),
)
# The form page may ask for the browser's location (the rest of the site may not).
FORM_PERMISSIONS = "camera=(), microphone=(), geolocation=(self)"
NO_STORE = {"Cache-Control": "no-store"}
SUBMIT_FAILED = "Laporan belum tersimpan karena gangguan sistem. Coba kirim lagi; laporan tidak akan tercatat dua kali."
RESUBMITTED = "Formulir ini sudah pernah dikirim dengan isi lain. Periksa isian, lalu kirim lagi sebagai laporan baru."
PROCESSING = (
    "Laporan Anda sudah kami terima dan sedang dicatat. Muat ulang halaman ini sebentar lagi untuk melihat nomornya."
)


def _form_page(
    request: Request,
    doors: Doors,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
    form_token: str | None = None,
) -> Response:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    web = doors.gateway.config.web
    context: dict[str, Any] = {
        "values": values or {"kerahasiaan": "publik"},
        "errors": errors or {},
        "problem": problem,
        "csrf_token": csrf,
        "form_token": form_token or doors.form_token(csrf),
        "anonymity": ANONYMITY,
        "max_files": web.max_files,
        "max_mb": web.max_file_bytes // (1024 * 1024),
    }
    response = render(request, "public_form.html", context, status=status)
    response.headers.update({**NO_STORE, "Permissions-Policy": FORM_PERMISSIONS})
    options = cookie_options(request)
    response.set_cookie(CSRF_COOKIE, csrf, **{**options, "samesite": "strict"})
    return response


def _refusal(request: Request, refused: Refused) -> Response:
    log.info(REFUSED, reason=refused.reason, status=refused.status, path=request.url.path)
    context = {"message": refused.message, "status": refused.status, "retry_after": refused.retry_after}
    response = render(request, "public_error.html", context, status=refused.status)
    response.headers.update({**NO_STORE, **refused.headers})
    return response


def too_big_page(config: Config) -> bytes:
    """The page for a body over the limit, rendered once: the HTTP layer refuses it before any route runs."""
    web = config.web
    message = TOO_BIG.format(files=web.max_files, mb=web.max_file_bytes // (1024 * 1024))
    context = {"message": message, "status": 413, "retry_after": None, "path": "/lapor"}
    return templates.get_template("public_error.html").render(context).encode()


@router.get("/lapor")
def report_form(request: Request) -> Response:
    try:
        return _form_page(request, doors_of(request))
    except Refused as refused:
        return _refusal(request, refused)


@router.post("/lapor")
async def submit_report(request: Request) -> Response:
    try:
        doors = doors_of(request)
        doors.limit("submit", doors.client(request))
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise Refused(400, "Formulir tidak dapat diproses. Muat ulang halaman, lalu kirim lagi.", "not multipart")
        form = await doors.multipart(request, await doors.read_body(request))
        return await _take(request, doors, form)
    except Refused as refused:
        return _refusal(request, refused)


async def _take(request: Request, doors: Doors, form: FormData) -> Response:
    if not same_token(form.get("csrf_token"), request.cookies.get(CSRF_COOKIE)):
        raise Refused(
            403, "Formulir ini tidak sah atau sudah kedaluwarsa. Muat ulang halaman, lalu kirim lagi.", "csrf"
        )
    if str(form.get(HONEYPOT) or "").strip():
        # Only a script fills a field nobody sees; it is told nothing more than a person would be.
        raise Refused(400, "Formulir tidak dapat diproses. Muat ulang halaman, lalu kirim lagi.", "honeypot")
    values = {name: str(form.get(name) or "") for name in FIELDS}
    token = str(form.get("form_token") or "")
    try:
        submission_id = doors.check_form_token(token, str(form.get("csrf_token")))
    except Refused as refused:
        if refused.reason != "form submitted too fast":
            raise
        log.info(REFUSED, reason=refused.reason, status=refused.status, path=request.url.path)
        # The same token again: once a person has looked the form over, it goes through.
        return _form_page(request, doors, values, problem=refused.message, status=400, form_token=token)
    uploads, upload_error = await doors.uploads([f for f in form.getlist("lampiran") if isinstance(f, UploadFile)])
    report, errors = report_from_values(values, [], via="form")
    if upload_error:
        errors["lampiran"] = upload_error
    if report is None or errors:
        return _form_page(request, doors, values, errors, status=422, form_token=token)
    report["attachments"] = await doors.keep(uploads)
    result = await doors.submit(report, submission_id)
    if result.tracking_id is not None:
        response = render(request, "public_sent.html", {"tracking_id": result.tracking_id}, status=200)
        response.headers.update(NO_STORE)
        return response
    if result.status == entry.KEY_REUSED:
        return _form_page(request, doors, values, problem=RESUBMITTED, status=409)
    if result.status == entry.PROCESSING:
        return _refusal(request, Refused(202, PROCESSING, "still processing"))
    return _form_page(request, doors, values, problem=SUBMIT_FAILED, status=503, form_token=token)


@router.get("/cek")
def lookup_form(request: Request, nomor: str | None = None) -> Response:
    if nomor and nomor.strip():
        # The form works without JavaScript: the typed number becomes the status page's address.
        return RedirectResponse(f"/cek/{nomor.strip()[:40]}", status_code=303)
    return render(request, "public_lookup.html", {"problem": None})


@router.get("/cek/{tracking_id}")
def status_page(request: Request, tracking_id: str) -> Response:
    try:
        doors = doors_of(request)
        doors.limit("lookup", doors.client(request))
        view = doors.public_view(tracking_id)
        if view is None:
            raise not_found()
    except Refused as refused:
        return _refusal(request, refused)
    response = render(request, "public_status.html", {"view": view})
    response.headers.update(NO_STORE)
    return response
