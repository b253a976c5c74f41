"""A provider's HTTP API on 127.0.0.1 (free port): records every request and answers from canned responses.

It stands in for Twilio, Jasmin's /send, Kannel's sendsms, Meta's Graph API, Telegram's Bot API and a
forwarding sink alike: ``route(method, path, *answers)`` queues answers for a path (the last one repeats;
method ``"*"`` matches any), ``default`` answers everything else.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ANY = "*"


@dataclass(frozen=True)
class Canned:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (a long poll that finds nothing, a slow provider).
    delay_s: float = 0.0

    @classmethod
    def json(cls, data: Any, status: int = 200, delay_s: float = 0.0) -> Canned:
        return cls(status=status, body=json.dumps(data).encode(), content_type="application/json", delay_s=delay_s)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: bytes  # as sent, still percent-encoded
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """A urlencoded form body, as the gateway's aiogram session sends Bot API calls."""
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


class ProviderApi:
    def __init__(self, default: Canned | None = None) -> None:
        self.requests: list[Recorded] = []
        self.default = default if default is not None else Canned()
        self._routes: dict[tuple[str, str], list[Canned]] = {}
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=split.path,
                    query=split.query.encode("latin-1"),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=body,
                )
                answer = api._answer(recorded)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads ``requests`` instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def route(self, method: str, path: str, *answers: Canned) -> None:
        with self._lock:
            self._routes[(method, path)] = list(answers)

    def seen(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def _answer(self, recorded: Recorded) -> Canned:
        with self._lock:
            self.requests.append(recorded)
            queue = self._routes.get((recorded.method, recorded.path)) or self._routes.get((ANY, recorded.path))
            if not queue:
                return self.default
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def __enter__(self) -> ProviderApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
