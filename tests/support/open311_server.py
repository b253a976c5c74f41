"""A GeoReport v2 (Open311) server on 127.0.0.1, written from the spec, standing in for an agency's system.

- ``GET services.json``, ``GET services/{code}.json`` (only for services with ``metadata: true``);
- ``POST requests.json`` (form-encoded): realtime services answer ``[{"service_request_id"}]``, batch
  services ``[{"token"}]``; errors are ``[{"code", "description"}]`` with 400 / 403 / 404;
- ``GET tokens/{token}.json``: the id once the batch has made one (after ``token_lookups`` asks);
- ``GET requests.json`` by ``service_request_id=a,b,…`` or by ``service_code`` + ``start_date``.

The test drives the agency's side: ``update(id, status, notes, at)`` sets what a request says now, so a
test can serve updates in any order, or the same one twice. ``stall_next_post`` makes the next post
create its request and then answer too late (the client times out after the agency already has it).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "kunci-dinas-pupr"


@dataclass
class Service:
    code: str
    name: str
    type: str = "realtime"  # realtime | batch
    attributes: list[str] = field(default_factory=list)  # attribute codes; none: no metadata


@dataclass
class Request:
    id: str
    service_code: str
    form: dict[str, str]
    requested: datetime
    status: str = "open"
    status_notes: str | None = None
    updated: datetime | None = None


class Open311Server:
    def __init__(self, services: list[Service]) -> None:
        self.services = {service.code: service for service in services}
        self.requests: dict[str, Request] = {}
        self.posts: list[dict[str, str]] = []
        self.calls: list[tuple[str, str, dict[str, list[str]]]] = []
        self.tokens: dict[str, list[Any]] = {}  # token -> [request id, lookups left before it is ready]
        self.token_lookups = 0
        self.stall_next_post = 0.0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                query = parse_qs(split.query)
                status, body = server.get(split.path, query)
                self._answer(status, body)

            def do_POST(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body, stall = server.post(split.path, form)
                if stall:
                    time.sleep(stall)
                # The client may have given up waiting: the request exists all the same.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(status, body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/open311/v2"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Open311Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # ---- the agency's side -----------------------------------------------------------------

    def update(self, request_id: str, status: str, notes: str | None, at: datetime) -> None:
        with self._lock:
            request = self.requests[request_id]
            request.status, request.status_notes, request.updated = status, notes, at

    def calls_to(self, path: str) -> list[dict[str, list[str]]]:
        with self._lock:
            return [query for _, called, query in self.calls if called.endswith(path)]

    # ---- the spec ----------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, description: str) -> tuple[int, Any]:
        return status, [{"code": status, "description": description}]

    def get(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        with self._lock:
            self.calls.append(("GET", path, query))
            if query.get("api_key", [""])[0] != API_KEY and not path.endswith("services.json"):
                return self._error(403, "Invalid api_key")
            tail = path.removeprefix("/open311/v2/")
            if tail == "services.json":
                return 200, [
                    {
                        "service_code": s.code,
                        "service_name": s.name,
                        "metadata": bool(s.attributes),
                        "type": s.type,
                        "keywords": "",
                        "group": "",
                        "description": s.name,
                    }
                    for s in self.services.values()
                ]
            if tail.startswith("services/"):
                service = self.services.get(tail.removeprefix("services/").removesuffix(".json"))
                if service is None or not service.attributes:
                    return self._error(404, "service has no definition")
                attributes = [
                    {"variable": True, "code": code, "datatype": "string", "required": False, "order": n}
                    for n, code in enumerate(service.attributes, 1)
                ]
                return 200, {"service_code": service.code, "attributes": attributes}
            if tail.startswith("tokens/"):
                token = tail.removeprefix("tokens/").removesuffix(".json")
                if token not in self.tokens:
                    return self._error(404, "unknown token")
                entry = self.tokens[token]
                if entry[1] > 0:
                    entry[1] -= 1
                    return 200, [{"token": token}]
                return 200, [{"token": token, "service_request_id": entry[0]}]
            if tail == "requests.json":
                return 200, [self._view(r) for r in self._matching(query)]
            return self._error(404, f"no such path {path}")

    def _matching(self, query: dict[str, list[str]]) -> list[Request]:
        if "service_request_id" in query:
            wanted = query["service_request_id"][0].split(",")
            return [self.requests[i] for i in wanted if i in self.requests]
        found = list(self.requests.values())
        if "service_code" in query:
            found = [r for r in found if r.service_code == query["service_code"][0]]
        if "start_date" in query:
            since = datetime.fromisoformat(query["start_date"][0])
            found = [r for r in found if r.requested >= since]
        return found

    @staticmethod
    def _view(request: Request) -> dict[str, Any]:
        return {
            "service_request_id": request.id,
            "status": request.status,
            "status_notes": request.status_notes,
            "service_code": request.service_code,
            "description": request.form.get("description"),
            "requested_datetime": request.requested.isoformat(),
            "updated_datetime": (request.updated or request.requested).isoformat(),
            "address": request.form.get("address_string"),
            "lat": request.form.get("lat"),
            "long": request.form.get("long"),
            "media_url": request.form.get("media_url"),
        }

    def post(self, path: str, form: dict[str, str]) -> tuple[int, Any, float]:
        with self._lock:
            self.calls.append(("POST", path, {k: [v] for k, v in form.items()}))
            if not path.endswith("/requests.json"):
                return (*self._error(404, "no such path"), 0.0)
            if form.get("api_key") != API_KEY:
                return (*self._error(403, "Invalid api_key"), 0.0)
            service = self.services.get(form.get("service_code", ""))
            if service is None:
                return (*self._error(404, f"service_code {form.get('service_code')} not found"), 0.0)
            if not (("lat" in form and "long" in form) or form.get("address_string")):
                return (*self._error(400, "lat/long or address_string is required"), 0.0)
            self.posts.append(form)
            request = Request(str(1000 + len(self.requests)), service.code, form, datetime.now(UTC))
            self.requests[request.id] = request
            stall, self.stall_next_post = self.stall_next_post, 0.0
            if service.type == "batch":
                token = f"tok-{request.id}"
                self.tokens[token] = [request.id, self.token_lookups]
                return 201, [{"token": token}], stall
            return 201, [{"service_request_id": request.id, "service_notice": "", "account_id": None}], stall
