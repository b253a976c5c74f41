"""``/api/v1/public/reports``: the same door as ``/lapor`` for the Android/iOS apps.

An app sends its key from ``public_api.keys`` in ``X-Api-Key``. A report
comes as JSON (files inline, base64) or as multipart with the web form's
field names (files as ``lampiran``). The rules are the form's: the
per-client rate limit, body and upload limits, the file type from the
bytes; the form's honeypot and typing-time check are for browsers and do not
apply. ``Idempotency-Key`` makes a retried POST the same report.
"""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from gateway import entry
from gateway.public import FIELDS, Doors, Refused, Upload, checked_report, doors_of, not_found, report_from_values

router = APIRouter(prefix="/api/v1/public", tags=["public"])

KEY_HEADER = "X-Api-Key"


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str | None = Field(default=None, max_length=255)
    content_base64: str


class ReportIn(BaseModel):
    """The JSON body; ``reporter`` and ``location`` as in the complaint record."""

    model_config = ConfigDict(extra="forbid")

    body: str
    subject: str | None = None
    location: dict[str, Any] | None = None
    reporter: dict[str, Any] = Field(default_factory=dict)
    consent: bool = False
    attachments: list[FileIn] = Field(default_factory=list)


def _app_name(doors: Doors, given: str | None) -> str:
    """The app whose key was sent; 401 otherwise (every key compared, in constant time)."""
    found = None
    for name, key in doors.gateway.config.public_api.keys.items():
        if given and secrets.compare_digest(given.encode(), key.get_secret_value().encode()):
            found = name
    if found is None:
        raise Refused(401, f"{KEY_HEADER} missing or unknown — use a key from public_api.keys", "api key")
    return found


def _answer(refused: Refused) -> JSONResponse:
    return JSONResponse({"detail": refused.message}, status_code=refused.status, headers=refused.headers)


def _invalid(errors: dict[str, str]) -> JSONResponse:
    detail = [{"loc": ["body", field], "msg": message} for field, message in errors.items()]
    return JSONResponse({"detail": detail}, status_code=422)


@router.post("/reports", status_code=201)
async def create_report(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """A citizen's report from an app; answers with its tracking id and the status page's address."""
    try:
        doors = doors_of(request)
        app = _app_name(doors, x_api_key)
        doors.limit("submit", doors.client(request))
        body = await doors.read_body(request)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await doors.multipart(request, body)
            values = {name: str(form.get(name) or "") for name in FIELDS}
            files = [f for f in form.getlist("lampiran") if isinstance(f, UploadFile)]
            uploads, upload_error = await doors.uploads(files)
            report, errors = report_from_values(values, [], via=f"app:{app}")
        else:
            report, errors, uploads, upload_error = await _json_report(doors, body, app)
    except Refused as refused:
        return _answer(refused)
    if upload_error:
        errors["attachments"] = upload_error
    if report is None or errors:
        return _invalid(errors)
    report["attachments"] = await doors.keep(uploads)
    submission = f"app:{app}:{idempotency_key}" if idempotency_key else f"app:{app}:gen-{uuid.uuid4().hex}"
    result = await doors.submit(report, submission)
    if result.tracking_id is not None:
        view = doors.public_view(result.tracking_id) or {}
        status_url = f"{doors.gateway.config.http.public_url}/cek/{result.tracking_id}"
        return JSONResponse({**view, "status_url": status_url}, status_code=201, headers=result.headers)
    if result.status == entry.KEY_REUSED:
        return JSONResponse(result.body, status_code=422)
    return JSONResponse(result.body, status_code=result.status, headers=result.headers)


async def _json_report(
    doors: Doors, body: bytes, app: str
) -> tuple[dict[str, Any] | None, dict[str, str], list[Upload], str | None]:
    try:
        given = ReportIn.model_validate_json(body)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise Refused(400, "body is not valid JSON", "json") from None
        return None, {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors(include_url=False)}, [], None
    files: list[UploadFile] = []
    for each in given.attachments:
        try:
            data = base64.b64decode(each.content_base64, validate=True)
        except (binascii.Error, ValueError):
            return None, {}, [], f"{each.filename or 'berkas'} bukan base64"
        files.append(UploadFile(file=io.BytesIO(data), filename=each.filename, size=len(data)))
    uploads, upload_error = await doors.uploads(files)
    candidate: dict[str, Any] = {
        "body": given.body,
        "subject": given.subject,
        "location": given.location,
        "reporter": given.reporter,
        "consent": given.consent,
        "attachments": [],
        "via": f"app:{app}",
    }
    report, errors = checked_report(candidate)
    return report, errors, uploads, upload_error


@router.get("/reports/{tracking_id}")
def get_report(request: Request, tracking_id: str, x_api_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    """The public view: status, agency, public timeline; nothing personal. Unknown ids: 404, always the same."""
    try:
        doors = doors_of(request)
        _app_name(doors, x_api_key)
        doors.limit("lookup", doors.client(request))
        view = doors.public_view(tracking_id)
        if view is None:
            raise not_found()
    except Refused as refused:
        return _answer(refused)
    return JSONResponse(view)
