"""``make bench worker``: how fast one worker drains its inbox (rows/s, ms per row), with no HTTP in the way.

Run as its own process (bench.py starts it). A fresh store (a SQLite file, or
a PostgreSQL schema of its own with ``--backend postgresql``) is filled with
``-n`` pending inbox rows, as the edges write them: manual entries like
``make bench manual``'s and, with ``--sms`` (a share of the rows), signed-off
Twilio SMS webhooks, whose acknowledgements go through the outbox. The worker
loads the trained model (cached between runs), then ``process_inbox_batch``
is timed until the inbox is empty. Only the inbox drain is timed: the outbox
rows it queues are left for the senders, which ``make bench twilio`` measures.

The manual-entry rate of a gateway cannot exceed this figure (each request
waits for its record), and for webhooks it is the sustained rate.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlmodel import col

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench import database, twilio_form  # noqa: E402
from channels.base import InboxItem  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.config import Config, parse_config  # noqa: E402
from gateway.inbox import insert_inbox_rows  # noqa: E402
from gateway.logs import configure_logging  # noqa: E402
from gateway.normalizer_models import model_path  # noqa: E402
from sinks.store.db import Store, open_store, upgrade  # noqa: E402
from sinks.store.models import DONE, Complaint, InboxMessage, OutboxMessage, utcnow  # noqa: E402

# The trained model outlives a run: training takes minutes on a busy machine, loading a second.
MODEL_CACHE = Path(tempfile.gettempdir()) / "lapor-bench-worker" / "model.pkl"


def manual_item(number: int, run: str) -> InboxItem:
    """What ``POST /api/v1/complaints`` puts in the inbox for bench.py's manual entry."""
    body = {"body": f"Lampu jalan mati di gang {number}", "source": "phone", "category": "pju"}
    meta = {"entered_by": "bench", "idempotency_key": f"bench-{run}-{number}"}
    return InboxItem(
        channel="manual",
        provider="callcenter",
        external_id=f"bench:bench-{run}-{number}",
        raw=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        meta=meta,
    )


def sms_item(number: int, run: str) -> InboxItem:
    """What Twilio's SMS webhook puts in the inbox for bench.py's twilio scenario."""
    params = twilio_form(number, run)
    return InboxItem(
        channel="sms",
        provider="twilio",
        external_id=params["MessageSid"],
        raw=urlencode(params).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def fill(store: Store, count: int, sms_share: float, chunk: int = 1000) -> None:
    """``count`` pending inbox rows, every ``1/sms_share``-th an SMS (none when the share is 0)."""
    run = uuid.uuid4().hex[:8]
    every = round(1 / sms_share) if sms_share > 0 else 0
    items = [
        sms_item(number, run) if every and number % every == 0 else manual_item(number, run) for number in range(count)
    ]
    for offset in range(0, count, chunk):
        received_at = utcnow()
        with store.write() as session:
            insert_inbox_rows(session, [(item, received_at) for item in items[offset : offset + chunk]])


def bench_config(url: str, data_dir: Path) -> Config:
    return parse_config(
        {
            "database": {"url": url},
            "data_dir": str(data_dir),
            "logging": {"format": "json", "level": "info"},
            "channels": {
                "smtp": {"enabled": False},
                "twilio": {
                    "enabled": True,
                    "account_sid": "ACbench0000000000000000000000000000",
                    "auth_token": "bench-twilio-auth-token",
                    # Never called: only the inbox is drained, the acknowledgements stay queued.
                    "api_base": "http://127.0.0.1:9",
                },
            },
        }
    )


def count(store: Store, model: type[Complaint] | type[OutboxMessage] | type[InboxMessage]) -> int:
    with store.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def pending(store: Store) -> int:
    with store.read() as session:
        query = select(func.count()).select_from(InboxMessage).where(col(InboxMessage.status) != DONE)
        return int(session.execute(query).scalar_one())


async def drain(gateway: Gateway) -> int:
    """Inbox batches until none is left: the rows processed."""
    worker = gateway.worker
    total = 0
    while done := await worker.process_inbox_batch():
        total += done
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=int(os.environ.get("BENCH_WORKER_N", "5000")))
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sms", type=float, default=0.0, help="share of the rows that are Twilio SMS (0..1)")
    parser.add_argument("--warmup", type=int, default=200, help="rows drained (and not timed) first")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core's figure; the database server has the other
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    with tempfile.TemporaryDirectory(prefix="lapor-bench-worker-") as temp, database(args.backend, Path(temp)) as url:
        data_dir = Path(temp) / "data"
        if MODEL_CACHE.exists():
            model_path(data_dir).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(MODEL_CACHE, model_path(data_dir))
        config = bench_config(url, data_dir)
        store = open_store(url)
        upgrade(store)
        gateway = Gateway(config, store, runs_worker=True)  # loads (or trains) the model
        if model_path(data_dir).exists():
            MODEL_CACHE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_path(data_dir), MODEL_CACHE)

        async def timed() -> tuple[int, float, float]:
            fill(store, args.warmup, args.sms)
            await drain(gateway)  # first batches pay for imports, compiled-statement caches, the JIT of regexes
            fill(store, args.count, args.sms)
            started, cpu_started = time.perf_counter(), time.process_time()
            processed = await drain(gateway)
            return processed, time.perf_counter() - started, time.process_time() - cpu_started

        # Logged as `lapor-gateway worker` logs (a JSON line per row at info), to a file rather than the terminal.
        configure_logging(config.logging.level, config.logging.format)
        with (Path(temp) / "worker.log").open("w") as log_file, contextlib.redirect_stderr(log_file):
            processed, elapsed, cpu = asyncio.run(timed())
        complaints, outbox, left = count(store, Complaint), count(store, OutboxMessage), pending(store)
        store.dispose()

    result = {
        "backend": args.backend,
        "rows": processed,
        "sms_share": args.sms,
        "rows_per_s": round(processed / elapsed),
        "ms_per_row": round(elapsed / processed * 1000, 3),
        # The worker's own CPU per row: steadier than the wall clock on a shared machine.
        "cpu_ms_per_row": round(cpu / processed * 1000, 3),
        "complaints": complaints,
        "outbox": outbox,
        "left": left,
    }
    print(
        f"worker drain ({args.backend}, {processed} rows, {args.sms:.0%} SMS): {result['rows_per_s']:,} rows/s, "
        f"{result['ms_per_row']} ms/row ({result['cpu_ms_per_row']} ms CPU); "
        f"{complaints} complaints, {outbox} outbox rows, {left} not done"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
