"""The normalizer in the running gateway: stored fields, likely duplicates, /metrics, the commands, migration 0003."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, update
from sqlmodel import col
from typer.testing import CliRunner

from channels.base import InboxItem
from gateway.app import Gateway
from gateway.cli import app
from gateway.config import Config
from gateway.normalizer_models import HELDOUT_FILE, model_path
from sinks.store import queries
from sinks.store.db import Store, alembic_config
from sinks.store.models import Complaint
from tests.support.server import write_config

runner = CliRunner()


@contextmanager
def running(gateway: Gateway) -> Iterator[Gateway]:
    """The inbox writer running; the worker is driven by ``enter``."""
    gateway.inbox.start()
    try:
        yield gateway
    finally:
        gateway.inbox.stop()


@pytest.fixture
def started(gateway: Gateway) -> Iterator[Gateway]:
    with running(gateway) as ready:
        yield ready


def enter(gateway: Gateway, *entries: dict[str, str]) -> list[dict[str, object]]:
    """Manual entries through the inbox and the worker, one at a time; their stored records."""
    ids = []
    for entry in entries:
        item = InboxItem("manual", "callcenter", f"n-{uuid.uuid4().hex}", json.dumps(entry).encode(), meta={})
        ids.append(gateway.inbox.accept_blocking(item).inbox_id)
        asyncio.run(gateway.worker.run_until_idle())
    with gateway.store.read() as session:
        return [queries.complaint_record(c) for i in ids for c in queries.complaints_for_inbox(session, i)]


def test_a_stored_report_has_category_region_priority_and_auto(started: Gateway) -> None:
    (record,) = enter(started, {"body": "tlg pohon tumbang menutup jalan di kec. slawi kab tegal", "source": "phone"})

    assert record["category"] == "pohon"
    assert record["priority"] == "urgent"
    location = record["location"]
    assert isinstance(location, dict)
    assert location["region_code"] == "33.28.10"
    assert location["region_level"] == "kecamatan"
    assert location["region_path"][-1] == {"code": "33.28.10", "name": "Slawi"}
    auto = record["auto"]
    assert isinstance(auto, dict) and auto["priority"]["reasons"] and auto["normalizer"]
    assert record["related"] == []
    scraped = started.metrics.registry.get_sample_value("lapor_complaints_urgent_total", {"channel": "manual"})
    assert scraped == 1.0


def test_the_same_pothole_reported_twice_is_linked_but_not_across_regions(started: Gateway) -> None:
    first, second, elsewhere, other_problem = enter(
        started,
        {"body": "Jalan berlubang besar di depan SDN 2 Slawi, Kecamatan Slawi, Kabupaten Tegal", "source": "phone"},
        {"body": "ada lubang besar di jalan depan SDN 2 slawi, kec slawi kab tegal tolong", "source": "radio"},
        {"body": "Jalan berlubang besar di depan SDN 2, Kecamatan Adiwerna, Kabupaten Tegal", "source": "phone"},
        {"body": "sampah numpuk di depan SDN 2 Slawi, Kecamatan Slawi, Kabupaten Tegal", "source": "phone"},
    )
    assert first["related"] == []
    assert second["related"] == [first["tracking_id"]]
    assert elsewhere["related"] == []  # another kecamatan
    assert other_problem["related"] == []  # another category


def test_duplicates_within_one_batch_are_linked(started: Gateway) -> None:
    reports = [
        {"body": "lampu PJU mati sepanjang jalan depan pasar kec slawi kab tegal", "source": "phone"},
        {"body": "PJU mati sepanjang jalan depan pasar, kec. slawi kab. tegal, gelap bgt", "source": "radio"},
    ]
    ids = [
        started.inbox.accept_blocking(
            InboxItem("manual", "callcenter", f"b-{n}", json.dumps(report).encode(), meta={})
        ).inbox_id
        for n, report in enumerate(reports)
    ]
    asyncio.run(started.worker.run_until_idle())  # both rows claimed in one batch
    with started.store.read() as session:
        first, second = (queries.complaint_record(queries.complaints_for_inbox(session, i)[0]) for i in ids)
    assert second["related"] == [first["tracking_id"]]


def test_a_closed_complaint_is_no_longer_a_duplicate(started: Gateway) -> None:
    gateway = started
    (first,) = enter(gateway, {"body": "lampu PJU mati di jalan depan pasar kec slawi kab tegal", "source": "phone"})
    with gateway.store.write() as session:
        session.execute(
            update(Complaint).where(col(Complaint.tracking_id) == first["tracking_id"]).values(status="closed")
        )
    (second,) = enter(gateway, {"body": "lampu PJU mati di jalan depan pasar kec slawi kab tegal", "source": "radio"})
    assert second["related"] == []


def test_with_the_normalizer_off_records_are_as_entered(make_config: Callable[..., Config], store: Store) -> None:
    with running(Gateway(make_config(normalizer={"enabled": False}), store)) as gateway:
        (record,) = enter(gateway, {"body": "jalan rusak di kota tegal", "source": "phone"})
    assert record["category"] is None and record["auto"] is None and record["location"] is None


def test_renormalize_fills_automatic_fields_and_leaves_what_staff_set(
    make_config: Callable[..., Config], store: Store, tmp_path: Path, db_url: str
) -> None:
    with running(Gateway(make_config(normalizer={"enabled": False}), store)) as old:
        plain, chosen = enter(
            old,
            {"body": "jukir liar di alun2 kota tegal minta 5rb gk ada karcis", "source": "phone"},
            {"body": "banjir masuk rumah di kota tegal", "source": "phone", "category": "pelayanan_publik"},
        )
    config = write_config(tmp_path, db_url, 8080)

    dry = runner.invoke(app, ["--config", str(config), "complaints", "renormalize", "--dry-run", "--format", "json"])
    assert dry.exit_code == 0, dry.output
    summary = json.loads(dry.stdout)
    assert summary["seen"] == 2 and summary["changed"] == 2 and summary["dry_run"] is True
    with store.read() as session:
        assert queries.complaint_by_tracking_id(session, str(plain["tracking_id"])).category is None  # type: ignore[union-attr]

    done = runner.invoke(app, ["--config", str(config), "complaints", "renormalize"])
    assert done.exit_code == 0, done.output
    with store.read() as session:
        first = queries.complaint_by_tracking_id(session, str(plain["tracking_id"]))
        second = queries.complaint_by_tracking_id(session, str(chosen["tracking_id"]))
    assert first is not None and second is not None
    assert first.category == "parkir" and first.region_code == "33.76" and first.auto is not None
    assert second.category == "pelayanan_publik"  # the agent chose it
    assert second.priority == "urgent" and second.region_code == "33.76"
    assert second.auto is not None and second.auto["normalizer"]

    # A person corrects the category; a second run leaves it alone.
    with store.write() as session:
        session.execute(update(Complaint).where(col(Complaint.id) == first.id).values(category="ketertiban"))
    again = runner.invoke(app, ["--config", str(config), "complaints", "renormalize", "--format", "json"])
    assert json.loads(again.stdout)["changed"] == 0
    with store.read() as session:
        assert session.get(Complaint, first.id).category == "ketertiban"  # type: ignore[union-attr]


def test_evaluate_prints_the_held_out_figures(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url, 8080)
    result = runner.invoke(app, ["--config", str(config), "normalizer", "evaluate", str(HELDOUT_FILE), "-f", "json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["examples"] == 228
    assert figures["category"]["macro_f1"] >= 0.955
    assert set(figures["category"]["per_class"]["jalan"]) == {"precision", "recall", "f1", "support"}
    assert figures["region_accuracy"] >= 1.0 and figures["spurious_region_rate"] == 0.0
    table = runner.invoke(app, ["--config", str(config), "normalizer", "evaluate"], env={"COLUMNS": "200"})
    assert "macro avg" in table.stdout and "spurious-region rate" in table.stdout and "Confusion" in table.stdout


def test_train_learns_from_a_file_and_from_staff_corrections(tmp_path: Path, db_url: str, started: Gateway) -> None:
    enter(started, {"body": "odong odong lewat jalan raya bikin macet", "source": "phone"})
    with started.store.write() as session:
        session.execute(update(Complaint).values(category="ketertiban"))
    extra = tmp_path / "more.jsonl"
    extra.write_text(
        json.dumps({"text": "odong odong nongkrong di trotoar", "category": "ketertiban", "kind": "complaint"}) + "\n"
    )
    path = write_config(tmp_path, db_url, 8080)

    result = runner.invoke(app, ["--config", str(path), "normalizer", "train", "--from", str(extra), "--from-store"])
    assert result.exit_code == 0, result.output
    assert "1 from the store" in result.stdout
    assert model_path(tmp_path / "data").exists()

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "category": "bukan_kategori", "kind": "complaint"}) + "\n")
    refused = runner.invoke(app, ["--config", str(path), "normalizer", "train", "--from", str(bad)])
    assert refused.exit_code == 2 and "bukan_kategori" in refused.output


def test_migration_0003_adds_and_removes_the_columns(store: Store) -> None:
    columns = {c["name"] for c in inspect(store.engine).get_columns("complaint")}
    assert {"region_level", "region_path", "priority", "auto", "related"} <= columns
    assert "ix_complaint_related" in {i["name"] for i in inspect(store.engine).get_indexes("complaint")}
    config = alembic_config(store)
    command.downgrade(config, "0002")
    assert "priority" not in {c["name"] for c in inspect(store.engine).get_columns("complaint")}
    command.upgrade(config, "head")
    assert "priority" in {c["name"] for c in inspect(store.engine).get_columns("complaint")}


def test_openapi_documents_the_normalizer_fields(gateway: Gateway) -> None:
    from gateway.app import create_app

    schemas = create_app(gateway).openapi()["components"]["schemas"]
    record = schemas["ComplaintRecord"]["properties"]
    assert {"priority", "auto", "related", "location", "category", "kind"} <= set(record)
    assert {"region_level", "region_path"} <= set(schemas["Location"]["properties"])
    assert set(schemas["Decision"]["properties"]) == {"code", "confidence", "reasons"}


def test_an_http_only_process_loads_no_models(make_config: Callable[..., Config], store: Store) -> None:
    assert Gateway(make_config(worker={"in_process": False}), store).understanding is None
    worker_only = Gateway(make_config(worker={"in_process": False}), store, runs_worker=True)
    assert worker_only.understanding is not None
