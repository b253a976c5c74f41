"""``/api/v1``: manual entry and listings for call-center staff, the dead-letter list for admins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from channels import manual
from gateway import audit, entry, lifecycle, logs, record_schema, replay
from gateway.auth import Principal
from gateway.parts import Parts
from normalizer.errors import AuthError
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/v1")


class RecordResponse(JSONResponse):
    """JSON by orjson: the manual-entry answer is the hottest JSON the gateway writes."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _gateway(request: Request) -> Parts:
    gateway: Parts = request.app.state.gateway
    return gateway


async def _authenticated(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Any valid token; ``requires`` and each endpoint then say what the role may do."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    tokens = _gateway(request).tokens
    try:
        # A cached token costs no thread hop and no query; only a miss goes to the database.
        principal = tokens.cached(token.strip())
        if principal is None:
            principal = await run_in_threadpool(tokens.authenticate, token.strip())
    except AuthError as exc:
        log.info(logs.AUTH_REFUSED, path=request.url.path)
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return principal


def requires(role: str) -> Callable[[Request, str | None], Awaitable[Principal]]:
    async def dependency(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
        principal = await _authenticated(request, authorization)
        if not principal.can(role):
            raise HTTPException(403, f"this needs the {role} role")
        return principal

    return dependency


Agent = Annotated[Principal, Depends(requires("agent"))]
Admin = Annotated[Principal, Depends(requires("admin"))]
AgencyOrAdmin = Annotated[Principal, Depends(requires("agency"))]
AnyRole = Annotated[Principal, Depends(_authenticated)]


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["body", *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


IDEMPOTENCY_KEY_MAX = 200
_agent = requires("agent")
# The manual-entry route reads its header and body itself (below); what FastAPI would have documented
# from the parameters is said here, so /docs still shows the token, the key and the body.
_ENTRY_OPENAPI: dict[str, Any] = {
    "parameters": [
        {"name": "Authorization", "in": "header", "required": True, "schema": {"type": "string"}},
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
        },
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": manual.ManualEntry.model_json_schema()}},
    },
}


@router.post(
    "/complaints",
    status_code=201,
    responses={201: {"model": record_schema.ComplaintRecord}},
    openapi_extra=_ENTRY_OPENAPI,
)
async def create_complaint(request: Request) -> JSONResponse:
    """Enter a report that came by phone, radio, walk-in or social media; answers with its schema-v1 record.

    The hottest route an agent calls: it takes the plain request rather than FastAPI's dependency and
    header parameters, which cost a quarter of its time in the app (`make bench manual`).
    """
    principal = await _agent(request, request.headers.get("authorization"))
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        problem = {
            "loc": ["header", "idempotency-key"],
            "msg": f"String should have at most {IDEMPOTENCY_KEY_MAX} characters",
            "type": "string_too_long",
        }
        return JSONResponse({"detail": [problem]}, status_code=422)
    gateway = _gateway(request)
    raw = await request.body()  # gateway.limits.BodyLimit has refused it already if over http.max_body_bytes
    try:
        validated = manual.ManualEntry.model_validate_json(raw)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            return JSONResponse({"detail": "body is not valid JSON"}, status_code=400)
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)
    category_error = entry.category_problem(validated.category, gateway.config.categories)
    if category_error is not None:
        return JSONResponse({"detail": [{"loc": ["body", "category"], "msg": category_error}]}, status_code=422)
    kept = manual.kept_raw(raw, validated)
    result = await entry.submit(gateway, kept, principal.name, idempotency_key, request.headers.get("content-type", ""))
    return RecordResponse(result.body, status_code=result.status, headers=result.headers)


@router.get("/complaints", responses={200: {"model": record_schema.ComplaintPage}})
def list_complaints(
    request: Request,
    principal: Agent,
    channel: str | None = None,
    since: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    gateway = _gateway(request)
    with gateway.store.read() as session:
        try:
            page = queries.list_complaints(session, channel=channel, since=since, q=q, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"items": [queries.complaint_record(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/complaints/{tracking_id}", responses={200: {"model": record_schema.ComplaintRecord}})
def get_complaint(request: Request, principal: Agent, tracking_id: str) -> dict[str, Any]:
    canonical = canonical_tracking_id(tracking_id)
    if canonical is None:
        raise HTTPException(404, f"{tracking_id!r} is not a tracking id")
    with _gateway(request).store.read() as session:
        complaint = queries.complaint_by_tracking_id(session, canonical)
        if complaint is None:
            raise HTTPException(404, f"no complaint {canonical}")
        return {**lifecycle.record_with_events(session, complaint), "replies": queries.replies_of(session, canonical)}


def _ref(failed_id: str) -> replay.FailedRef:
    try:
        return replay.parse_ref(failed_id)
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/failed")
def list_failed(request: Request, principal: Admin) -> dict[str, Any]:
    return {"items": replay.list_failed(_gateway(request).store)}


@router.get("/failed/{failed_id}")
def show_failed(request: Request, principal: Admin, failed_id: str) -> dict[str, Any]:
    view = replay.show_failed(_gateway(request).store, _ref(failed_id))
    if view is None:
        raise HTTPException(404, f"no failed message {failed_id}")
    return view


@router.post("/failed/{failed_id}/replay")
def replay_failed(request: Request, principal: Admin, failed_id: str, dry_run: bool = False) -> dict[str, Any]:
    gateway = _gateway(request)
    ref = _ref(failed_id)
    if dry_run:
        try:
            view = replay.preview(gateway.store, gateway.config, ref)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        audit.record(gateway.store, principal.name, audit.DRY_RUN, str(ref), audit.PREVIEWED, {})
        return {"dry_run": True, **view}
    if not audit.audited_replay(gateway.store, ref, principal.name):
        raise HTTPException(409, f"{ref} is not in the failed list")
    log.info(logs.REPLAY_REQUESTED, ref=str(ref), by=principal.name)
    gateway.worker.wake.set()
    return {"id": str(ref), "status": "pending"}
