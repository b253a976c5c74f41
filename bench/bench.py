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
import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from sqlalchemy import select, text
from sqlmodel import col
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.whatsapp import sign as whatsapp_sign  # noqa: E402
from gateway.normalizer_models import model_path  # noqa: E402
from sinks.store.db import open_store  # noqa: E402
from sinks.store.models import Complaint, InboxMessage  # noqa: E402
from tests.support.server import Served, cli, free_port, serve, write_config  # noqa: E402


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
# Replies go to a local stand-in for the provider's API (PROVIDER_APP) that answers at once, as a
# healthy provider would: the worker sends every acknowledgement, as in production.
TWILIO_CONFIG = f"""
channels:
  twilio:
    enabled: true
    account_sid: ACbench0000000000000000000000000000
    auth_token: {BENCH_TWILIO_TOKEN}
    api_base: PROVIDER_URL
"""


def twilio_form(number: int, run: str) -> dict[str, str]:
    """The form of Twilio's inbound-SMS webhook for the n-th bench message (also bench_worker's SMS rows)."""
    sid = f"SMbench{run}x{number}"
    return {
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


def twilio_request(number: int, ctx: dict[str, Any]) -> Request:
    """An inbound SMS webhook signed the way Twilio signs it (HMAC-SHA1 of the public URL + sorted form)."""
    params = twilio_form(number, str(ctx["run"]))
    url = f"{ctx['public_url']}/webhooks/twilio"
    signature = RequestValidator(BENCH_TWILIO_TOKEN).compute_signature(url, params)
    return Request(
        "POST",
        "/webhooks/twilio",
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        urlencode(params).encode(),
    )


BENCH_WHATSAPP_SECRET = "bench-whatsapp-app-secret"
# Replies go to the provider stand-in, as for Twilio.
WHATSAPP_CONFIG = f"""
channels:
  whatsapp:
    enabled: true
    verify_token: bench-verify-token
    app_secret: {BENCH_WHATSAPP_SECRET}
    access_token: bench-access-token
    phone_number_id: "106540352242922"
    api_base: PROVIDER_URL
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


@dataclass(frozen=True)
class Run:
    """A scenario on a store with N HTTP processes (``serve --workers N``), compared with an echo of N workers."""

    scenario: str
    backend: str  # "sqlite" | "postgresql"
    workers: int = 1

    @property
    def label(self) -> str:
        return f"{self.scenario} {self.backend[:2]} w{self.workers}"


# What `make bench` runs: manual entry and a signed webhook, on SQLite and PostgreSQL, at 1 and 2 processes.
DEFAULT_RUNS = [
    Run("manual", "sqlite"),
    Run("twilio", "sqlite"),
    Run("manual", "postgresql"),
    Run("twilio", "postgresql"),
    Run("manual", "postgresql", workers=2),
    Run("twilio", "postgresql", workers=2),
]

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


PROVIDER_APP = textwrap.dedent(
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()
    SENT = {"sid": "SMbench", "messaging_product": "whatsapp", "messages": [{"id": "wamid.bench"}]}

    @app.post("/{path:path}")
    async def sent(path: str) -> JSONResponse:
        return JSONResponse(SENT, status_code=201)
    """
)


@contextmanager
def provider(work: Path) -> Iterator[str]:
    """The provider's API (Twilio, Graph) on loopback, in its own process; its URL."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "provider_app.py").write_text(PROVIDER_APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "provider_app:app", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen([*command, "--loop", "uvloop", "--http", "httptools"], cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.post(f"{url}/ping")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    p50_s: float
    p99_s: float
    failures: int
    wraps: int
    # CPU seconds the server's processes (HTTP, and a separate worker) used during the load, and wrk's own.
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU per answered request: on a machine where the load client takes a core, req/s
        measures how the cores were shared as much as the server; this does not."""
        return self.server_cpu_s / self.count * 1e6 if self.count else float("nan")


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


def load(
    name: str, port: int, requests: list[Request], args: argparse.Namespace, work: Path, server: tuple[int, ...] = ()
) -> Result:
    """wrk against ``port``; ``server`` are the pids whose CPU (with their children's) is counted."""
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
    server_before = sum(tree_cpu_seconds(pid) for pid in server)
    client_before = os.times()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    client_after = os.times()
    server_cpu_s = sum(tree_cpu_seconds(pid) for pid in server) - server_before
    client_cpu_s = (client_after.children_user + client_after.children_system) - (
        client_before.children_user + client_before.children_system
    )
    line = next(row for row in output.splitlines() if row.startswith("RESULT "))
    count, duration_us, p50_us, p99_us, non2xx, wraps = (int(part) for part in line.split()[1:])
    return Result(name, count, duration_us / 1e6, p50_us / 1e6, p99_us / 1e6, non2xx, wraps, server_cpu_s, client_cpu_s)


def run_baseline(work: Path, args: argparse.Namespace, workers: int = 1) -> Result:
    work.mkdir(parents=True, exist_ok=True)
    (work / "echo_app.py").write_text(ECHO_APP)
    port = free_port()
    # The same HTTP stack as `serve` (uvloop, httptools) and the same number of processes.
    command = [sys.executable, "-m", "uvicorn", "echo_app:app", "--port", str(port), "--log-level", "warning"]
    command += ["--loop", "uvloop", "--http", "httptools", "--workers", str(workers)]
    process = subprocess.Popen(command, cwd=work)
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
        return load(f"fastapi echo w{workers}", port, requests, args, work, (process.pid,))
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


POSTGRES_URL = os.environ.get("LAPOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """A fresh store for one run: a SQLite file, or a PostgreSQL schema of its own (dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory}/bench.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


_MODEL: list[Path] = []  # the normalizer's model, trained once per bench run


def _trained_model(config: Path, data_dir: Path) -> None:
    """Give a run's data_dir the trained model, so no start-up trains it again (minutes on a busy machine)."""
    target = model_path(data_dir)
    if not _MODEL:
        cli(config, "normalizer", "train")
        _MODEL.append(target)
    elif _MODEL[0] != target:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_MODEL[0], target)


@contextmanager
def gateway(
    run: Run, url: str, directory: Path, provider_url: str, extra: str = ""
) -> Iterator[tuple[int, dict[str, Any], Served]]:
    """``serve`` (``--workers N``) on a migrated store, with a token; a separate worker when the scenario asks."""
    scenario = SCENARIOS[run.scenario]
    port = free_port()
    config_extra = scenario.config_extra.replace("PROVIDER_URL", provider_url)
    config_extra += (SEPARATE_WORKER_CONFIG if scenario.separate_worker else "") + extra
    config = write_config(directory, url, port, config_extra)
    cli(config, "db", "upgrade")
    _trained_model(config, directory / "data")
    ctx: dict[str, Any] = {
        "token": cli(config, "tokens", "create", "--name", "bench", "--role", "agent").strip(),
        "run": f"{os.getpid()}{run.label.replace(' ', '')}",
        "public_url": f"http://127.0.0.1:{port}",
    }
    served = serve(config, port, directory / "serve.log", "--workers", str(run.workers))
    worker = (
        subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "worker"])
        if scenario.separate_worker
        else None
    )
    ctx["pids"] = (served.process.pid,) + ((worker.pid,) if worker is not None else ())
    try:
        yield port, ctx, served
    finally:
        served.stop()
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)


def run_scenario(run: Run, work: Path, args: argparse.Namespace, provider_url: str) -> tuple[Result, list[float]]:
    scenario = SCENARIOS[run.scenario]
    directory = work / run.label.replace(" ", "-")
    directory.mkdir()
    with database(run.backend, directory) as url:
        with gateway(run, url, directory, provider_url) as (port, ctx, _):
            warm = argparse.Namespace(**{**vars(args), "seconds": 2})
            load("warm-up", port, [scenario.make_request(-n - 1, ctx) for n in range(2000)], warm, directory)
            requests = [scenario.make_request(n, ctx) for n in range(args.count)]
            result = load(run.label, port, requests, args, directory, ctx["pids"])
            time.sleep(2.0)  # let the worker drain before reading received→stored
        return result, stored_latencies(url)


def throughput(args: argparse.Namespace) -> None:
    runs = [Run(name, args.backend, args.workers) for name in args.scenarios] if args.scenarios else DEFAULT_RUNS
    with tempfile.TemporaryDirectory(prefix="lapor-bench-") as temp, provider(Path(temp) / "provider") as api:
        work = Path(temp)
        baselines: dict[int, Result] = {}
        rows: list[tuple[Run, Result, list[float]]] = []
        for run in runs:
            if run.workers not in baselines:  # the echo at the same process count, in this same run
                baselines[run.workers] = run_baseline(work / f"echo{run.workers}", args, run.workers)
            rows.append((run, *run_scenario(run, work, args, api)))

    print(f"\nlapor-gateway bench: wrk -t{args.threads} -c{args.concurrency} -d{args.seconds}s, cores={os.cpu_count()}")
    print("ratio = accepted/s over the bare FastAPI echo's req/s at the same number of processes, same run")
    print(
        "cpu µs = server CPU (HTTP processes and a separate worker) per answered request; cpu ratio = the echo's\n"
        "cpu µs over ours: what the ratio would be if the server had the cores wrk and the others take here"
    )
    header = (
        f"{'scenario':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'stored p99 ms':>14} {'non-2xx':>8} "
        f"{'ratio':>6} {'cpu µs':>7} {'cpu ratio':>9}"
    )
    print(header)
    print("-" * len(header))

    def line(result: Result, stored: list[float] | None, baseline: Result | None) -> str:
        stored_p99 = f"{percentile(stored, 0.99) * 1000:14.1f}" if stored else f"{'-':>14}"
        ratio = result.rate / baseline.rate if baseline and baseline.rate else 1.0
        cpu_ratio = baseline.cpu_us_per_request / result.cpu_us_per_request if baseline else 1.0
        return (
            f"{result.name:26} {result.rate:8.0f} {result.p50_s * 1000:8.1f} "
            f"{result.p99_s * 1000:8.1f} {stored_p99} {result.failures:8d} {ratio:6.2f} "
            f"{result.cpu_us_per_request:7.0f} {cpu_ratio:9.2f}"
        )

    for baseline in baselines.values():
        print(line(baseline, None, None))
    for run, result, stored in rows:
        print(line(result, stored, baselines[run.workers]))
        if result.wraps:
            print(f"  ({result.name}: the {args.count} pre-built requests ran out; {result.wraps} redeliveries)")


# ---- soak: a fixed rate below saturation for a long time ---------------------------------------------------


def process_tree(pid: int) -> Iterator[int]:
    """A process and all its descendants (the pre-fork master and its children), as they are now."""
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        yield current
        pending.extend(int(child) for child in children)


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    total = 0
    for each in process_tree(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        total += next(int(row.split()[1]) * 1024 for row in status.splitlines() if row.startswith("VmRSS:"))
    return total


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants so far (from /proc/<pid>/stat)."""
    total = 0
    for each in process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def store_bytes(url: str, directory: Path) -> int:
    if url.startswith("sqlite"):
        return sum(path.stat().st_size for path in directory.glob("bench.db*"))
    store = open_store(url)
    with store.read() as session:
        size = session.execute(
            text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        ).scalar_one()
    store.dispose()
    return int(size)


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


async def paced(
    port: int, requests: list[Request], rate: float, on_sent: Callable[[int], None], connections: int = 32
) -> list[float]:
    """Request i is due at i / rate; latency counts from when it was due, so a slow answer is not hidden.

    A few keep-alive connections write pre-built HTTP/1.1 requests and read the answers with asyncio
    streams: an HTTP client library's pool would cost more than the gateway at this rate.
    """
    latencies: list[float] = []
    failures = 0
    start = time.monotonic()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(len(requests)):
        queue.put_nowait(number)

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                try:
                    number = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                due = start + number / rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                on_sent(number)
                writer.write(raw_request(requests[number], port))
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                if status < 300:
                    latencies.append(time.monotonic() - due)
                else:
                    failures += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    if failures:
        print(f"  soak: {failures} requests without a 2xx")
    return latencies


def soak(args: argparse.Namespace) -> None:
    run = Run(args.scenarios[0] if args.scenarios else "manual", args.backend, args.workers)
    scenario = SCENARIOS[run.scenario]
    with tempfile.TemporaryDirectory(prefix="lapor-soak-") as temp:
        directory = Path(temp)
        with (
            provider(directory / "provider") as api,
            database(run.backend, directory) as url,
            gateway(run, url, directory, api) as (port, ctx, served),
        ):
            requests = [scenario.make_request(n, ctx) for n in range(args.messages)]
            samples: dict[str, int] = {}
            # "start" once warm (imports done, caches filled, pools open): what grows after it is the leak.
            checkpoints = {max(500, args.messages // 50): "start", args.messages // 2: "middle"}

            def on_sent(number: int) -> None:
                if number in checkpoints:
                    samples[checkpoints[number]] = tree_rss_bytes(served.process.pid)

            began = time.monotonic()
            latencies = asyncio.run(paced(port, requests, args.rate, on_sent))
            elapsed = time.monotonic() - began
            time.sleep(3.0)  # the worker's tail
            samples["end"] = tree_rss_bytes(served.process.pid)
            stored = stored_latencies(url)
            db_size = store_bytes(url, directory)
            data_size = tree_bytes(directory / "data")
    per_k = 1000 / max(len(stored), 1)
    growth = (samples["end"] - samples["start"]) / samples["start"] if samples.get("start") else float("nan")
    print(f"\nlapor-gateway soak: {run.label}, {args.messages} messages at {args.rate:.0f}/s ({elapsed:.0f} s)")
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(f"  2xx: {len(latencies)}, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        "  RSS (all processes): "
        + ", ".join(f"{name} {value / 2**20:.1f} MiB" for name, value in samples.items())
        + f"; growth start→end {growth:+.1%}"
    )
    print(
        f"  stored: {len(stored)}; received→stored p50 {percentile(stored, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(stored, 0.99) * 1000:.1f} ms, max {max(stored, default=0) * 1000:.1f} ms"
    )
    print(
        f"  per 1,000 messages: database {db_size * per_k / 2**20:.2f} MiB, data/ {data_size * per_k / 2**10:.1f} KiB"
    )


# ---- keyset: paging a 1M-row store ------------------------------------------------------------------------


def timed_ms(action: Callable[[], object], repeat: int = 5) -> float:
    """The median of ``repeat`` runs, in milliseconds."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return sorted(times)[len(times) // 2]


def keyset(args: argparse.Namespace) -> None:
    from gateway import export
    from sinks.store import queries
    from sinks.store.db import upgrade
    from tests.support.bulk import add_complaints

    backends = [args.backend] if args.backend_given else ["sqlite", "postgresql"]
    print(f"\nlapor-gateway keyset: {args.rows} complaints, pages of 50 (median of 5)")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="lapor-keyset-") as temp, database(backend, Path(temp)) as url:
            store = open_store(url)
            upgrade(store)
            began = time.monotonic()
            add_complaints(store, args.rows, chunk=20_000)
            filled_s = time.monotonic() - began
            with store.read() as session:
                if backend == "postgresql":
                    session.execute(text("ANALYZE complaint"))
                # The cursor of the 51st oldest row: the page after it is the last one.
                oldest = session.execute(
                    select(Complaint).order_by(col(Complaint.received_at), col(Complaint.id)).offset(50).limit(1)
                ).scalar_one()
                cursor = queries.encode_cursor(oldest)

                first_ms = timed_ms(functools.partial(queries.list_complaints, session, limit=50))
                last_ms = timed_ms(functools.partial(queries.list_complaints, session, limit=50, cursor=cursor))
                assert len(queries.list_complaints(session, limit=50, cursor=cursor).items) == 50
            sample = min(args.rows, 100_000)
            began = time.monotonic()
            exported = sum(1 for _, _ in zip(range(sample), export.records(store), strict=False))
            export_rate = exported / (time.monotonic() - began)
            store.dispose()
        print(
            f"  {backend:10} first page {first_ms:6.1f} ms, last page {last_ms:6.1f} ms; "
            f"export {export_rate:,.0f} records/s (first {sample:,}); filled in {filled_s:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=int(os.environ.get("BENCH_N", "30000")))
    parser.add_argument("-c", "--concurrency", type=int, default=int(os.environ.get("BENCH_C", "32")))
    parser.add_argument("-t", "--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    parser.add_argument("-d", "--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "10")))
    parser.add_argument("-w", "--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "1")))
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument("--messages", type=int, default=int(os.environ.get("SOAK_MESSAGES", "100000")))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", "200")))
    parser.add_argument("--rows", type=int, default=int(os.environ.get("KEYSET_ROWS", "1000000")))
    parser.add_argument(
        "what", nargs="*", help="soak | keyset | normalizer | worker | scenario names (default: the standard runs)"
    )
    args = parser.parse_args()
    args.backend_given = args.backend is not None
    args.backend = args.backend or "sqlite"
    modes = [name for name in args.what if name in ("soak", "keyset", "normalizer", "worker")]
    args.scenarios = [name for name in args.what if name not in modes]
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        sys.exit(f"bench: unknown scenario {unknown[0]} (known: soak, keyset, normalizer, {', '.join(SCENARIOS)})")
    if "soak" in modes:
        soak(args)
    elif "keyset" in modes:
        keyset(args)
    elif "normalizer" in modes and not args.scenarios:
        normalizer_bench()
    elif "worker" in modes and not args.scenarios:
        worker_bench(args)
    else:
        throughput(args)
        if not args.what:
            normalizer_bench()


def normalizer_bench() -> None:
    # Not an HTTP scenario: normalize() in its own process on one core (bench/bench_normalizer.py).
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench_normalizer.py")], check=True)


def worker_bench(args: argparse.Namespace) -> None:
    # Not an HTTP scenario: one worker draining a filled inbox in its own process (bench/bench_worker.py).
    for backend in [args.backend] if args.backend_given else ["sqlite", "postgresql"]:
        command = [sys.executable, str(ROOT / "bench" / "bench_worker.py"), "--backend", backend, "--sms", "0.5"]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
