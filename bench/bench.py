"""``make bench``: throughput and latency of the gateway against a bare FastAPI echo, same client, same run.

For each scenario it starts ``lapor-gateway serve`` (SQLite under a temp dir, or
``--database-url``), posts N requests from an asyncio load client on loopback
with C in flight, and prints accepted/s, p50/p99 latency to the answer, and
received→stored p99 from the store. The baseline is a FastAPI endpoint under
uvicorn that answers 201 with what it was sent, measured with the same client
in the same run; the ratio is ours / baseline.

Channel scenarios register themselves in ``SCENARIOS`` below.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select
from sqlmodel import col
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.whatsapp import sign as whatsapp_sign  # noqa: E402
from sinks.store.db import open_store  # noqa: E402
from sinks.store.models import Complaint, InboxMessage  # noqa: E402
from tests.support.server import cli, free_port, serve, write_config  # noqa: E402


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    content: bytes


@dataclass(frozen=True)
class Scenario:
    """How to configure the gateway for a channel and build its n-th request."""

    name: str
    config_extra: str
    make_request: Callable[[int, dict[str, Any]], Request]
    expect_status: int


def manual_request(number: int, ctx: dict[str, Any]) -> Request:
    body = {"body": f"Lampu jalan mati di gang {number}", "source": "phone", "category": "pju"}
    return Request(
        "POST",
        "/api/v1/complaints",
        {
            "Authorization": f"Bearer {ctx['token']}",
            "Idempotency-Key": f"bench-{ctx['run']}-{number}",
            "Content-Type": "application/json",
        },
        json.dumps(body).encode(),
    )


BENCH_TWILIO_TOKEN = "bench-twilio-auth-token"
# Replies go to a closed loopback port: they fail fast and wait in the outbox, off the measured path.
TWILIO_CONFIG = f"""
channels:
  twilio:
    enabled: true
    account_sid: ACbench0000000000000000000000000000
    auth_token: {BENCH_TWILIO_TOKEN}
    api_base: http://127.0.0.1:9
"""


def twilio_request(number: int, ctx: dict[str, Any]) -> Request:
    """An inbound SMS webhook signed the way Twilio signs it (HMAC-SHA1 of the public URL + sorted form)."""
    sid = f"SMbench{ctx['run']}x{number}"
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "ACbench0000000000000000000000000000",
        "From": f"+62812{abs(number) % 10**7:07d}",
        "To": "+14155550123",
        "Body": f"LAPOR jalan berlubang di gang {number}",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    url = f"{ctx['public_url']}/webhooks/twilio"
    signature = RequestValidator(BENCH_TWILIO_TOKEN).compute_signature(url, params)
    return Request(
        "POST",
        "/webhooks/twilio",
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        urlencode(params).encode(),
    )


BENCH_WHATSAPP_SECRET = "bench-whatsapp-app-secret"
# Replies and media go to a closed loopback port, as for Twilio: off the measured path.
WHATSAPP_CONFIG = f"""
channels:
  whatsapp:
    enabled: true
    verify_token: bench-verify-token
    app_secret: {BENCH_WHATSAPP_SECRET}
    access_token: bench-access-token
    phone_number_id: "106540352242922"
    api_base: http://127.0.0.1:9
"""


def whatsapp_request(number: int, ctx: dict[str, Any]) -> Request:
    """A Cloud API text notification signed the way Meta signs it (X-Hub-Signature-256 over the raw body)."""
    wa_id = f"62812{abs(number) % 10**7:07d}"
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": f"Warga {number}"}, "wa_id": wa_id}],
        "messages": [
            {
                "from": wa_id,
                "id": f"wamid.bench{ctx['run']}x{number}",
                "timestamp": "1764064800",
                "type": "text",
                "text": {"body": f"LAPOR jalan berlubang di gang {number}"},
            }
        ],
    }
    notification = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }
    body = json.dumps(notification).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": whatsapp_sign(body, BENCH_WHATSAPP_SECRET)}
    return Request("POST", "/webhooks/whatsapp", headers, body)


SCENARIOS: dict[str, Scenario] = {
    "manual": Scenario("manual", "", manual_request, 201),
    "twilio": Scenario("twilio", TWILIO_CONFIG, twilio_request, 200),
    "whatsapp": Scenario("whatsapp", WHATSAPP_CONFIG, whatsapp_request, 200),
}

ECHO_APP = textwrap.dedent(
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    app = FastAPI()

    @app.post("/{path:path}")
    async def echo(path: str, request: Request) -> Response:
        return Response(await request.body(), status_code=201, media_type="application/json")
    """
)


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(name: str, base_url: str, requests: list[Request], concurrency: int, expect: int) -> Result:
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def user() -> None:
            nonlocal failures
            while not queue.empty():
                request = queue.get_nowait()
                started = time.perf_counter()
                response = await client.request(
                    request.method, request.path, headers=request.headers, content=request.content
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != expect:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(requests), elapsed, latencies, failures)


def run_baseline(work: Path, requests: list[Request], concurrency: int) -> Result:
    (work / "echo_app.py").write_text(ECHO_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "echo_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=work,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.post(f"{url}/ping", content=b"{}")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(load("warm-up", url, requests[:200], concurrency, 201))
        return asyncio.run(load("fastapi echo (baseline)", url, requests, concurrency, 201))
    finally:
        process.terminate()
        process.wait(timeout=30)


def stored_latencies(database_url: str) -> list[float]:
    """received (inbox commit) → stored (complaint commit), from the store itself."""
    store = open_store(database_url)
    with store.read() as session:
        rows = session.execute(
            select(col(InboxMessage.received_at), col(Complaint.stored_at)).join(
                Complaint, col(Complaint.inbox_id) == col(InboxMessage.id)
            )
        ).all()
    store.dispose()
    return [(stored - received).total_seconds() for received, stored in rows]


def run_scenario(
    scenario: Scenario, work: Path, database_url: str | None, count: int, concurrency: int
) -> tuple[Result, list[float]]:
    port = free_port()
    directory = work / scenario.name
    directory.mkdir()
    url = database_url or f"sqlite:///{directory}/bench.db"
    config = write_config(directory, url, port, scenario.config_extra)
    cli(config, "db", "upgrade")
    ctx: dict[str, Any] = {
        "token": cli(config, "tokens", "create", "--name", "bench", "--role", "agent").strip(),
        "run": os.getpid(),
        "public_url": f"http://127.0.0.1:{port}",
    }
    served = serve(config, port, directory / "serve.log")
    try:
        warm = [scenario.make_request(-n - 1, ctx) for n in range(min(200, count))]
        asyncio.run(load("warm-up", served.url, warm, concurrency, scenario.expect_status))
        requests = [scenario.make_request(n, ctx) for n in range(count)]
        result = asyncio.run(load(scenario.name, served.url, requests, concurrency, scenario.expect_status))
        time.sleep(1.0)  # let the worker drain before reading received→stored
    finally:
        served.stop()
    return result, stored_latencies(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=int(os.environ.get("BENCH_N", "3000")))
    parser.add_argument("-c", "--concurrency", type=int, default=int(os.environ.get("BENCH_C", "32")))
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lapor-bench-") as temp:
        work = Path(temp)
        sample = SCENARIOS["manual"].make_request
        baseline_requests = [sample(n, {"token": "x", "run": 0}) for n in range(args.count)]
        baseline = run_baseline(work, baseline_requests, args.concurrency)
        rows: list[tuple[Result, list[float]]] = []
        for name in args.scenarios:
            rows.append(run_scenario(SCENARIOS[name], work, args.database_url, args.count, args.concurrency))

    backend = "postgresql" if args.database_url else "sqlite"
    print(
        f"\nlapor-gateway bench: n={args.count} concurrency={args.concurrency} store={backend} cores={os.cpu_count()}"
    )
    header = f"{'scenario':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'stored p99 ms':>14} {'fail':>5} {'ratio':>6}"
    print(header)
    print("-" * len(header))

    def line(result: Result, stored: list[float] | None) -> str:
        stored_p99 = f"{percentile(stored, 0.99) * 1000:14.1f}" if stored else f"{'-':>14}"
        ratio = result.rate / baseline.rate if baseline.rate else 0.0
        return (
            f"{result.name:28} {result.rate:9.0f} {statistics.median(result.latencies) * 1000:8.1f} "
            f"{percentile(result.latencies, 0.99) * 1000:8.1f} {stored_p99} {result.failures:5d} {ratio:6.2f}"
        )

    print(line(baseline, None))
    for result, stored in rows:
        print(line(result, stored))


if __name__ == "__main__":
    main()
