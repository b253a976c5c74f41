"""Concurrent copies of one entry make one complaint."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.server import cli, free_port, serve, write_config


def test_twenty_concurrent_posts_with_one_idempotency_key_make_one_complaint(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, db_url, port)
    cli(config, "db", "upgrade")
    token = cli(config, "tokens", "create", "--name", "siti").strip()
    served = serve(config, port, tmp_path / "serve.log")
    try:

        def post(_: int) -> httpx.Response:
            return httpx.post(
                f"{served.url}/api/v1/complaints",
                json={"body": "Pungli di loket KTP", "source": "walk_in", "category": "pungli"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "walk-in-77"},
                timeout=30,
            )

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(post, range(20)))
        listed = httpx.get(
            f"{served.url}/api/v1/complaints", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
    finally:
        served.stop()

    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.json()["tracking_id"] for r in responses}) == 1
    assert len(listed["items"]) == 1
