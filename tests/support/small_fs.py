"""A gateway whose ``data/`` sits on a small file system we can fill and free: the disk-full rig.

Run as ``unshare -rm python -m tests.support.small_fs ...`` (a user and mount
namespace of its own, so no root is needed and nothing is mounted on the host):
it mounts a tmpfs of ``--size`` at ``--mount``, migrates a SQLite store there,
prints ``token <agent token>``, starts ``lapor-gateway serve`` and then obeys
one command a line on stdin, answering one line on stdout:

- ``fill``: write a filler file until the file system has no byte left;
- ``free``: delete it;
- ``stop``: stop the gateway (SIGTERM);
- ``check``: ``PRAGMA integrity_check`` on the database file itself;
- ``copy <path>``: copy the database out (SQLite's backup API) for the test to read.

End of input stops the gateway if it still runs, and the namespace (and its tmpfs) goes with us.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from gateway.auth import create_token
from sinks.store.db import open_store, upgrade

FILLER = "filler.bin"


def _fill(directory: Path) -> int:
    written = 0
    chunk = b"\0" * 65536
    with open(directory / FILLER, "ab", buffering=0) as handle:
        while True:
            try:
                written += handle.write(chunk)
            except OSError:
                chunk = chunk[: len(chunk) // 2]  # the last few bytes too: the disk is full, not nearly full
                if not chunk:
                    return written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mount", type=Path, required=True)
    parser.add_argument("--size", default="4m")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size}", "lapor-small", str(args.mount)], check=True)
    database = args.mount / "data" / "lapor.db"
    store = open_store(f"sqlite:///{database}")
    upgrade(store)
    print("token", create_token(store, "beban", "agent"), flush=True)
    store.dispose()
    with open(args.log, "ab") as log:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(args.config), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "fill":
            print("filled", _fill(args.mount), flush=True)
        elif command == "free":
            (args.mount / FILLER).unlink(missing_ok=True)
            print("freed", flush=True)
        elif command == "stop":
            gateway.terminate()
            print("stopped", gateway.wait(timeout=60), flush=True)
        elif command == "check":
            with sqlite3.connect(database) as connection:
                print("integrity", connection.execute("PRAGMA integrity_check").fetchone()[0], flush=True)
        elif command == "copy":
            with sqlite3.connect(database) as source, sqlite3.connect(argument) as target:
                source.backup(target)
            print("copied", flush=True)
    if gateway.poll() is None:
        gateway.terminate()
        gateway.wait(timeout=60)


if __name__ == "__main__":
    main()
