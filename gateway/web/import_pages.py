"""**Impor**: upload a CSV recap, see every row's problems, then send the good rows through the inbox.

The preview carries the file back in a hidden field, so the import step needs
no server-side temporary state and works behind any load balancer.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from channels import csv_import
from gateway.web.render import render
from gateway.web.security import SignedIn, Staff, WebError, checked_form
from normalizer.errors import PayloadError

router = APIRouter(include_in_schema=False)

MAX_FILE_BYTES = 2 * 1024 * 1024


def _page(request: Request, staff: Staff, **context: Any) -> Response:
    status = context.pop("status", 200)
    base = {"columns": csv_import.COLUMNS, "categories": request.app.state.gateway.config.categories}
    return render(request, "import.html", {**base, **context}, staff, status)


def _enabled(request: Request) -> None:
    if not request.app.state.gateway.config.channel("csv").enabled:
        raise WebError(403, "Impor CSV dimatikan di konfigurasi (channels.csv.enabled).")


@router.get("/impor")
def import_form(request: Request, staff: SignedIn) -> Response:
    _enabled(request)
    return _page(request, staff)


@router.get("/impor/contoh.csv")
def sample(staff: SignedIn) -> Response:
    headers = {"Content-Disposition": 'attachment; filename="contoh-impor-laporan.csv"'}
    return Response(csv_import.sample_csv().encode("utf-8-sig"), media_type="text/csv; charset=utf-8", headers=headers)


async def _uploaded(form: FormData) -> tuple[str, bytes]:
    upload = form.get("berkas")
    if isinstance(upload, UploadFile):
        data = await upload.read(MAX_FILE_BYTES + 1)
        name = upload.filename or "unggahan.csv"
    else:
        try:
            data = base64.b64decode(str(form.get("data", "")), validate=True)
        except binascii.Error:
            raise WebError(400, "Data berkas rusak; unggah ulang berkasnya.") from None
        name = str(form.get("nama_berkas", "unggahan.csv"))
    if not data:
        raise WebError(400, "Pilih berkas CSV terlebih dahulu.")
    if len(data) > MAX_FILE_BYTES:
        raise WebError(413, "Berkas terlalu besar (paling besar 2 MB). Pecah menjadi beberapa berkas.")
    return name[:200], data


@router.post("/impor/pratinjau")
async def preview(request: Request, staff: SignedIn) -> Response:
    _enabled(request)
    form = await checked_form(request, staff)
    name, data = await _uploaded(form)
    try:
        parsed = csv_import.read_csv(data, request.app.state.gateway.config.categories)
    except PayloadError as exc:
        return _page(request, staff, file_error=str(exc), status=422)
    return _page(request, staff, parsed=parsed, filename=name, data=base64.b64encode(data).decode(), preview=True)


@router.post("/impor/kirim")
async def submit(request: Request, staff: SignedIn) -> Response:
    _enabled(request)
    form = await checked_form(request, staff, max_part_size=4 * MAX_FILE_BYTES)
    name, data = await _uploaded(form)
    gateway = request.app.state.gateway
    try:
        parsed = csv_import.read_csv(data, gateway.config.categories)
    except PayloadError as exc:
        return _page(request, staff, file_error=str(exc), status=422)
    summary = await csv_import.submit(parsed, gateway.inbox.accept, staff.username, name)
    gateway.worker.wake.set()
    return _page(request, staff, summary=summary, filename=name, parsed=parsed)
