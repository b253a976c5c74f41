"""``lapor-gateway serve`` as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, db_url: str, port: int, extra: str = "") -> Path:
    path = directory / "config.yaml"
    path.write_text(
        f"database:\n  url: {db_url}\n"
        f"http:\n  host: 127.0.0.1\n  port: {port}\n  public_url: http://127.0.0.1:{port}\n"
        f"data_dir: {directory / 'data'}\n"
        "logging:\n  format: json\n  level: warning\n" + extra,
        encoding="utf-8",
    )
    return path


def cli(config: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str

    def kill_hard(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill_hard()


def serve(config: Path, port: int, log: Path, *options: str) -> Served:
    """Start the gateway (``options`` go to ``serve``, e.g. ``--workers 2``); wait (bounded) for /readyz."""
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "serve", *options],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Served(process, url)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gateway did not become ready: {log.read_text()[-2000:]}")
