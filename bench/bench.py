"""``make bench``: throughput and latency of the gateway against a bare FastAPI echo, same client, same run.

The load client is ``wrk`` (Debian's package; installed when missing and run
as root), so the client is not the bottleneck it would be in Python. For each
scenario the bench starts ``lapor-gateway serve`` (SQLite under a temp dir, or
``--database-url``), pre-builds every request (each with its own provider id,
signed where the provider signs), lets wrk send them for a fixed time with C
connections, and prints accepted/s, p50/p99 latency to the answer, and
received→stored p99 read back from the store. The baseline is a FastAPI
endpoint under uvicorn that answers 201 with what it was sent, loaded the same
way in the same run; the ratio is ours / baseline.

Channel scenarios register themselves in ``SCENARIOS`` below.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    # Run the worker as its own process (`worker.in_process: false` + `lapor-gateway worker`): the
    # HTTP process and the worker then each have a core instead of sharing one interpreter lock.
    separate_worker: bool = False


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
    "manual+worker": Scenario("manual+worker", "", manual_request, 201, separate_worker=True),
    "twilio+worker": Scenario("twilio+worker", TWILIO_CONFIG, twilio_request, 200, separate_worker=True),
}
SEPARATE_WORKER_CONFIG = "worker:\n  in_process: false\n"

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
    p50_s: float
    p99_s: float
    failures: int
    wraps: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env, capture_output=True)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("bench: wrk is needed (apt-get install wrk)")
    return found


def _lua_string(raw: bytes) -> str:
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in raw) + '"'


def raw_request(request: Request, port: int) -> bytes:
    head = [f"{request.method} {request.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    head.append(f"Content-Length: {len(request.content)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + request.content


# Each wrk thread walks its own stride of the pre-built requests; a wrap (a redelivery) is counted.
WRK_SCRIPT = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("first", #threads)
end
function init(args)
  step = tonumber(args[1])
  i = first
  wraps = 0
end
function request()
  local r = requests[i]
  i = i + step
  if i > #requests then i = first; wraps = wraps + 1 end
  return r
end
function done(summary, latency, requests_)
  local wrapped = 0
  for _, thread in ipairs(threads) do wrapped = wrapped + thread:get("wraps") end
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status, wrapped))
end
"""


def load(name: str, port: int, requests: list[Request], args: argparse.Namespace, work: Path) -> Result:
    script = work / f"{name.split()[0]}-{len(requests)}.lua"
    with open(script, "w") as lua:
        lua.write("requests = {\n")
        for request in requests:
            lua.write(_lua_string(raw_request(request, port)) + ",\n")
        lua.write("}\n" + WRK_SCRIPT)
    command = [
        ensure_wrk(),
        f"-t{args.threads}",
        f"-c{args.concurrency}",
        f"-d{args.seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
        "--",
        str(args.threads),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(row for row in output.splitlines() if row.startswith("RESULT "))
    count, duration_us, p50_us, p99_us, non2xx, wraps = (int(part) for part in line.split()[1:])
    return Result(name, count, duration_us / 1e6, p50_us / 1e6, p99_us / 1e6, non2xx, wraps)


def run_baseline(work: Path, args: argparse.Namespace) -> Result:
    (work / "echo_app.py").write_text(ECHO_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "echo_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=work,
    )
    try:
        for _ in range(100):
            try:
                httpx.post(f"http://127.0.0.1:{port}/ping", content=b"{}")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        requests = [manual_request(n, {"token": "x", "run": 0}) for n in range(args.count)]
        warm = argparse.Namespace(**{**vars(args), "seconds": 2})
        load("warm-up", port, requests[:2000], warm, work)
        return load("fastapi echo (baseline)", port, requests, args, work)
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


def run_scenario(scenario: Scenario, work: Path, args: argparse.Namespace) -> tuple[Result, list[float]]:
    port = free_port()
    directory = work / scenario.name
    directory.mkdir()
    url = args.database_url or f"sqlite:///{directory}/bench.db"
    extra = scenario.config_extra + (SEPARATE_WORKER_CONFIG if scenario.separate_worker else "")
    config = write_config(directory, url, port, extra)
    cli(config, "db", "upgrade")
    ctx: dict[str, Any] = {
        "token": cli(config, "tokens", "create", "--name", "bench", "--role", "agent").strip(),
        "run": f"{os.getpid()}{scenario.name}",
        "public_url": f"http://127.0.0.1:{port}",
    }
    served = serve(config, port, directory / "serve.log")
    worker = (
        subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "worker"])
        if scenario.separate_worker
        else None
    )
    try:
        warm = argparse.Namespace(**{**vars(args), "seconds": 2})
        load("warm-up", port, [scenario.make_request(-n - 1, ctx) for n in range(2000)], warm, directory)
        requests = [scenario.make_request(n, ctx) for n in range(args.count)]
        result = load(scenario.name, port, requests, args, directory)
        time.sleep(2.0)  # let the worker drain before reading received→stored
    finally:
        served.stop()
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
    return result, stored_latencies(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=int(os.environ.get("BENCH_N", "30000")))
    parser.add_argument("-c", "--concurrency", type=int, default=int(os.environ.get("BENCH_C", "32")))
    parser.add_argument("-t", "--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    parser.add_argument("-d", "--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "10")))
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("scenarios", nargs="*", default=[*SCENARIOS, "normalizer"])
    args = parser.parse_args()
    if "normalizer" in args.scenarios:
        # Not an HTTP scenario: normalize() in its own process on one core (bench/bench_normalizer.py).
        subprocess.run([sys.executable, str(ROOT / "bench" / "bench_normalizer.py")], check=True)
        args.scenarios = [name for name in args.scenarios if name != "normalizer"]
        if not args.scenarios:
            return

    with tempfile.TemporaryDirectory(prefix="lapor-bench-") as temp:
        work = Path(temp)
        baseline = run_baseline(work, args)
        rows = [run_scenario(SCENARIOS[name], work, args) for name in args.scenarios]

    backend = "postgresql" if args.database_url else "sqlite"
    print(
        f"\nlapor-gateway bench: wrk -t{args.threads} -c{args.concurrency} -d{args.seconds}s, "
        f"store={backend}, cores={os.cpu_count()}"
    )
    header = (
        f"{'scenario':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'stored p99 ms':>14} {'non-2xx':>8} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))

    def line(result: Result, stored: list[float] | None) -> str:
        stored_p99 = f"{percentile(stored, 0.99) * 1000:14.1f}" if stored else f"{'-':>14}"
        ratio = result.rate / baseline.rate if baseline.rate else 0.0
        return (
            f"{result.name:26} {result.rate:8.0f} {result.p50_s * 1000:8.1f} "
            f"{result.p99_s * 1000:8.1f} {stored_p99} {result.failures:8d} {ratio:6.2f}"
        )

    print(line(baseline, None))
    for result, stored in rows:
        print(line(result, stored))
        if result.wraps:
            print(f"  ({result.name}: the {args.count} pre-built requests ran out; {result.wraps} redeliveries)")


if __name__ == "__main__":
    main()
