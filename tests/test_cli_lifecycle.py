"""The lifecycle from the command line: agency tokens, verify/forward/reject/resolve/reopen, agencies, sinks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway import agency_sync
from gateway.auth import authenticate
from gateway.cli import app
from sinks.store.db import Store
from tests.support.complaints import add_complaint, complaint
from tests.support.server import write_config

runner = CliRunner()
AGENCIES = """agencies:
  dpupr: {name: Dinas PUPR, categories: [jalan], regions: ["33.28"]}
  dlh: {name: Dinas Lingkungan Hidup, categories: [sampah], forward: pusat}
sinks:
  - {name: pusat, url: "http://127.0.0.1:9/hooks", secret: "whsec_dGVzdC1zZWNyZXQ="}
"""


@pytest.fixture
def config_path(db_url: str, tmp_path: Path) -> Path:
    return write_config(tmp_path, db_url, 8080, AGENCIES)


def invoke(config_path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config_path), *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_an_agency_token_is_bound_to_a_configured_agency(config_path: Path, store: Store) -> None:
    code, output = invoke(config_path, "tokens", "create", "--name", "pupr", "--role", "agency", "--agency", "dpupr")
    assert code == 0, output
    principal = authenticate(store, output.strip().splitlines()[-1])
    assert (principal.role, principal.agency) == ("agency", "dpupr")
    assert invoke(config_path, "tokens", "create", "--name", "x", "--role", "agency")[0] == 2
    assert invoke(config_path, "tokens", "create", "--name", "x", "--role", "agency", "--agency", "dinsos")[0] == 2


def test_a_complaint_goes_through_its_lifecycle_from_the_cli(config_path: Path, store: Store) -> None:
    tracking_id = add_complaint(store, region_code="33.28.05")
    code, output = invoke(config_path, "complaints", "verify", tracking_id, "--format", "json")
    assert code == 0, output
    assert json.loads(output)[0]["to"] == "verified"
    assert invoke(config_path, "complaints", "forward", tracking_id.lower())[0] == 0  # the unique rule: dpupr
    assert complaint(store, tracking_id).agency == "dpupr"
    code, output = invoke(config_path, "complaints", "close", tracking_id)
    assert code == 1 and "is forwarded" in output and "in_progress, resolved, verified" in output
    assert invoke(config_path, "complaints", "resolve", tracking_id, "--note", "Sudah ditambal.")[0] == 0
    assert invoke(config_path, "complaints", "reopen", tracking_id, "--note", "Warga: belum rata")[0] == 0
    code, output = invoke(config_path, "complaints", "events", tracking_id, "--format", "jsonl")
    assert [json.loads(line)["to"] for line in output.splitlines()] == [
        "verified",
        "forwarded",
        "resolved",
        "in_progress",
    ]


def test_a_rejection_needs_its_reason(config_path: Path, store: Store) -> None:
    tracking_id = add_complaint(store)
    assert invoke(config_path, "complaints", "reject", tracking_id, "--reason", "boring")[0] == 2
    assert invoke(config_path, "complaints", "reject", tracking_id, "--reason", "out_of_area")[0] == 0
    assert complaint(store, tracking_id).status == "rejected"


def test_agencies_list_and_sinks_enable(config_path: Path, store: Store) -> None:
    code, output = invoke(config_path, "agencies", "list", "--format", "json")
    assert code == 0
    assert [(a["code"], a["forward"]) for a in json.loads(output)] == [("dpupr", "none"), ("dlh", "pusat")]
    assert invoke(config_path, "sinks", "enable", "pusat")[0] == 1  # not disabled
    agency_sync.disable(store, "pusat", "sink pusat answered 410")
    code, output = invoke(config_path, "sinks", "list", "--format", "json")
    assert json.loads(output)[0]["disabled"] == "sink pusat answered 410"
    assert invoke(config_path, "sinks", "enable", "pusat")[0] == 0
    assert agency_sync.disabled(store, "pusat") is None


def test_an_agency_web_account_is_bound_to_its_agency(config_path: Path, store: Store) -> None:
    from gateway import users

    args = ["--config", str(config_path), "users", "create", "--username", "pupr", "--role", "agency"]
    refused = runner.invoke(app, [*args, "--password-stdin"], input="kata-sandi-panjang\n")
    assert refused.exit_code == 2 and "needs --agency" in refused.output
    made = runner.invoke(app, [*args, "--agency", "dpupr", "--password-stdin"], input="kata-sandi-panjang\n")
    assert made.exit_code == 0, made.output
    assert users.check_password(store, "pupr", "kata-sandi-panjang").agency == "dpupr"
