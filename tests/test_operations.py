"""What docs/operations.md hands an operator is checked by the tools that will read it.

- the systemd units: ``systemd-analyze verify`` (Debian's ``systemd``), with the checkout they name
  (``/opt/lapor-gateway``) mapped onto this one, so the ``ExecStart`` binary is real;
- the alert rules: ``promtool check rules`` and ``promtool test rules`` (Debian's ``prometheus``);
- the Grafana dashboard and the rules: every metric they name is one the gateway exports on /metrics;
- the nginx block (``nginx -t``) and the scrape example on the page match the files in deploy/;
- the page's ``pg_dump`` and ``pg_restore`` lines bring a store back whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text

from gateway.app import Gateway, create_app
from gateway.auth import create_token
from sinks.store.db import open_store, upgrade
from tests.conftest import POSTGRES_URL, bearer, build_config
from tests.support.docs import ROOT, fenced_blocks
from tests.support.e2e import complaint_records
from tests.support.server import free_port

DEPLOY = ROOT / "deploy"
PAGE = ROOT / "docs" / "operations.md"
_METRIC = re.compile(r"\blapor_[a-z_]+\b")


def ensure_tool(binary: str, package: str) -> str:
    """The tool's path; installed from Debian's package when missing (the tests run as root on Debian)."""
    found = shutil.which(binary)
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
        check=True,
        env=env,
        capture_output=True,
        timeout=1200,
    )
    found = shutil.which(binary)
    assert found, f"{package} installed no {binary}"
    return found


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = ensure_tool("systemd-analyze", "systemd")
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {unit.name for unit in units} == {"lapor-gateway.service", "lapor-gateway-worker@.service"}
    for unit in units:
        text = unit.read_text()
        assert "ExecStart=/opt/lapor-gateway/.venv/bin/lapor-gateway " in text
        (tmp_path / unit.name).write_text(text.replace("/opt/lapor-gateway", str(ROOT)))
    assert (ROOT / ".venv" / "bin" / "lapor-gateway").exists(), "make .venv/.installed first"
    names = [str(tmp_path / "lapor-gateway.service"), str(tmp_path / "lapor-gateway-worker@1.service")]
    result = subprocess.run([analyze, "verify", *names], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings: none allowed


def test_the_units_run_the_commands_the_readme_names() -> None:
    serve = (DEPLOY / "systemd" / "lapor-gateway.service").read_text()
    worker = (DEPLOY / "systemd" / "lapor-gateway-worker@.service").read_text()
    assert re.search(r"^ExecStart=\S+/lapor-gateway serve$", serve, re.MULTILINE)
    assert re.search(r"^ExecStart=\S+/lapor-gateway worker$", worker, re.MULTILINE)
    for unit in (serve, worker):
        assert "Environment=LAPOR_GATEWAY_CONFIG=/etc/lapor-gateway/config.yaml" in unit
        assert "StateDirectory=lapor-gateway" in unit


def test_the_alert_rules_pass_promtool_check_and_their_unit_tests(tmp_path: Path) -> None:
    promtool = ensure_tool("promtool", "prometheus")
    rules = DEPLOY / "prometheus" / "lapor-gateway-rules.yml"
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", "lapor-gateway-rules.test.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in yaml.safe_load(rules.read_text())["groups"] for rule in group["rules"]}
    assert {"LaporStoreDown", "LaporChannelSilent", "LaporFailedGrowing", "LaporOutboxLag"} <= alerts
    tests = yaml.safe_load((DEPLOY / "prometheus" / "lapor-gateway-rules.test.yml").read_text())["tests"]
    exercised = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert exercised == alerts - {"LaporGatewayDown"}  # `up` is Prometheus's own series


def exported_names(client: TestClient) -> set[str]:
    """Every series name /metrics can carry: counters' _total, histograms' _bucket/_count/_sum, gauges."""
    names: set[str] = set()
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "histogram":
                names |= {name, f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            elif kind == "counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
            else:
                names.add(name)
    return names


def test_every_metric_the_dashboard_and_the_rules_name_is_exported(client: TestClient) -> None:
    exported = exported_names(client)
    dashboard = json.loads((DEPLOY / "grafana" / "lapor-gateway.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for expr in exprs for name in _METRIC.findall(expr)}
    named |= set(_METRIC.findall((DEPLOY / "prometheus" / "lapor-gateway-rules.yml").read_text()))
    table = [line for line in PAGE.read_text().splitlines() if line.startswith("| `lapor_")]
    named |= {name for line in table for name in _METRIC.findall(line)}
    assert "lapor_store_up" in named and "lapor_processing_latency_seconds_bucket" in named
    assert named - exported == set(), f"named but not exported: {sorted(named - exported)}"


def test_the_dashboard_is_importable_grafana_json() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "lapor-gateway.json").read_text())
    assert dashboard["uid"] == "lapor-gateway" and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]


def test_the_page_shows_the_files_in_deploy() -> None:
    blocks = {block.info: block.text for block in fenced_blocks(PAGE)}
    conf = (DEPLOY / "nginx" / "lapor-gateway.conf").read_text()
    assert conf.split("\n", 1)[1] == blocks["nginx"]
    scrape = yaml.safe_load(blocks["yaml prometheus"])
    assert scrape["scrape_configs"][0]["job_name"] == "lapor-gateway"
    assert scrape["rule_files"][0].endswith("/lapor-gateway-rules.yml")


@pytest.mark.parametrize("unit", ["lapor-gateway.service", "lapor-gateway-worker@.service"])
def test_the_page_installs_the_units_it_starts(unit: str) -> None:
    assert f"deploy/systemd/{unit}" in PAGE.read_text()


def test_the_nginx_block_passes_nginx_t(tmp_path: Path) -> None:
    nginx = ensure_tool("nginx", "nginx-light")
    ensure_tool("openssl", "openssl")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=lapor.example.go.id", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    site = (DEPLOY / "nginx" / "lapor-gateway.conf").read_text()
    # nginx -t binds its listeners: keep them on loopback, on free ports; the certificate is a fresh one.
    mapping = {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{free_port()} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{free_port()};",
        "/etc/letsencrypt/live/lapor.example.go.id/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/lapor.example.go.id/privkey.pem": str(key),
    }
    for documented, here in mapping.items():
        assert documented in site, f"deploy/nginx/lapor-gateway.conf no longer says {documented!r}"
        site = site.replace(documented, here)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n  proxy_temp_path {tmp_path}/proxy;\n"
        f"  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def page_line(program: str) -> str:
    """The first command line of the page that runs ``program``."""
    return next(line for line in PAGE.read_text().splitlines() if line.startswith(f"{program} "))


def run_page_line(line: str, mapping: dict[str, str]) -> None:
    """The line as the page has it, only its database URL and backup folder put in place, run by bash."""
    for documented, here in mapping.items():
        assert documented in line, f"docs/operations.md no longer says {documented!r} in {line!r}"
        line = line.replace(documented, here)
    result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_the_pages_pg_dump_and_pg_restore_bring_the_store_back(tmp_path: Path) -> None:
    """A dump taken as the page says, restored as the page says into an empty database, is the same store."""
    suffix = uuid.uuid4().hex[:8]
    documented = "postgresql://lapor@127.0.0.1:5432/lapor"
    with scratch_database(f"lapor_src_{suffix}") as source, scratch_database(f"lapor_dst_{suffix}") as target:
        store = open_store(source)
        upgrade(store)
        entry = {"body": "Lampu jalan mati di Jl. Sudirman", "source": "phone", "category": "pju"}
        with TestClient(create_app(Gateway(build_config(source, tmp_path / "data"), store))) as client:
            token = create_token(store, "siti", "agent")
            answer = client.post("/api/v1/complaints", json=entry, headers={**bearer(token), "Idempotency-Key": "bk-1"})
            assert answer.status_code == 201, answer.text
        before = complaint_records(store)
        store.dispose()

        run_page_line(page_line("pg_dump"), {documented: source, "/var/backups/lapor/": f"{tmp_path}/"})
        [dump] = tmp_path.glob("lapor-*.dump")
        restore = {
            f"--dbname={documented}": f"--dbname={target}",
            "/var/backups/lapor/lapor-2026-12-01.dump": str(dump),
        }
        run_page_line(page_line("pg_restore"), restore)

        restored = open_store(target)
        try:
            assert complaint_records(restored) == before
            with restored.read() as session:
                revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            upgrade(restored)  # already at head: `db upgrade` after a restore is a no-op
            with restored.read() as session:
                assert session.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == revision
        finally:
            restored.dispose()
