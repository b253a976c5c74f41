"""A real HTTP server on 127.0.0.1 that records what it is sent and answers from a script."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    url: str
    calls: list[Recorded] = field(default_factory=list)
    # Status codes to answer with, in order; when used up, ``default_status``.
    script: list[int] = field(default_factory=list)
    default_status: int = 200
    response_body: bytes = b"{}"


@contextmanager
def recording_server() -> Iterator[Recorder]:
    recorder = Recorder(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                recorder.calls.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
                status = recorder.script.pop(0) if recorder.script else recorder.default_status
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(recorder.response_body)))
            self.end_headers()
            self.wfile.write(recorder.response_body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
