"""Health, readiness and metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import Config, parse_config
from tests.conftest import bearer


def test_healthz_and_readyz_answer_when_the_database_is_there(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok"
    assert client.get("/readyz").json() == {"ready": True}


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # A port nobody listens on: the process is up, the database is not.
    config = parse_config({"database": {"url": "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1"}})
    with TestClient(create_app(Gateway(config))) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["ready"] is False


def test_metrics_answer_with_store_up_0_when_the_database_is_unreachable() -> None:
    config = parse_config({"database": {"url": "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1"}})
    with TestClient(create_app(Gateway(config))) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert "lapor_store_up 0.0" in response.text


def test_metrics_show_store_up_and_every_queue_series(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert "lapor_store_up 1.0" in text
    for table in ("inbox", "outbox"):
        for status in ("pending", "processing", "failed"):
            assert f'lapor_queue_depth{{status="{status}",table="{table}"}} 0.0' in text


def test_metrics_count_accepted_duplicates_and_processed_per_channel(client: TestClient, agent_token: str) -> None:
    entry = {"body": "PJU mati", "source": "phone"}
    for _ in range(2):
        client.post("/api/v1/complaints", json=entry, headers={**bearer(agent_token), "Idempotency-Key": "m-1"})

    text = client.get("/metrics").text
    assert 'lapor_inbox_accepted_total{channel="manual",provider="callcenter"} 1.0' in text
    assert 'lapor_inbox_duplicates_total{channel="manual",provider="callcenter"} 1.0' in text
    assert 'lapor_worker_processed_total{channel="manual",provider="callcenter"} 1.0' in text
    assert 'lapor_processing_latency_seconds_count{channel="manual"} 1.0' in text
    assert "lapor_queue_depth" in text


def test_api_docs_are_off_by_default_and_the_openapi_document_stays(
    running_client: Callable[[Config], TestClient], make_config: Callable[..., Config]
) -> None:
    with running_client(make_config()) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").status_code == 200
    with running_client(make_config(http={"api_docs": True})) as client:
        assert client.get("/docs").status_code == 200
