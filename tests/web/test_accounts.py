"""Staff accounts, their CLI, ``import-csv`` and migration 0002, on SQLite and PostgreSQL (no server needed)."""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from alembic import command
from sqlalchemy import func, inspect, select
from sqlmodel import col
from typer.testing import CliRunner

from channels import csv_import
from gateway import users
from gateway.cli import app
from normalizer.errors import AuthError
from sinks.store.db import Store, alembic_config
from sinks.store.models import InboxMessage, StaffUser, Throttle, utcnow

PASSWORD = "kata-sandi-panjang"


def test_only_an_argon2id_hash_of_the_password_is_kept(store: Store) -> None:
    users.create_user(store, "siti", PASSWORD, "agent")
    with store.read() as session:
        stored = session.execute(select(StaffUser)).scalar_one()
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    assert users.check_password(store, "siti", PASSWORD).role == "agent"


def test_accounts_refuse_bad_names_short_passwords_unknown_roles_and_twins(store: Store) -> None:
    users.create_user(store, "siti", PASSWORD, "agent")
    for username, password, role in (
        ("Siti Aminah", PASSWORD, "agent"),
        ("budi", "pendek", "agent"),
        ("budi", PASSWORD, "root"),
        ("siti", PASSWORD, "admin"),
    ):
        with pytest.raises(users.UserError):
            users.create_user(store, username, password, role)


def _outcome(store: Store, username: str, password: str, now: datetime, address: str | None = None) -> str:
    try:
        users.check_password(store, username, password, now=now, address=address)
    except users.Throttled as exc:
        return f"wait {exc.seconds}"
    except AuthError:
        return "wrong"
    return "in"


def test_misses_slow_the_account_with_growing_delays_and_a_good_password_clears_them(store: Store) -> None:
    users.create_user(store, "siti", PASSWORD, "agent")
    t = utcnow()
    assert [_outcome(store, "siti", "salah", t) for _ in range(5)] == ["wrong"] * 5
    assert _outcome(store, "siti", PASSWORD, t) == "wait 1"  # even the right password waits
    assert _outcome(store, "siti", "salah", t + timedelta(seconds=1)) == "wrong"  # the sixth miss doubles it
    assert _outcome(store, "siti", PASSWORD, t + timedelta(seconds=2)) == "wait 1"
    assert _outcome(store, "siti", PASSWORD, t + timedelta(seconds=3)) == "in"
    assert _outcome(store, "siti", "salah", t + timedelta(seconds=3)) == "wrong"  # counting starts again


def test_an_attacker_cannot_lock_an_admin_out_for_more_than_a_minute(store: Store) -> None:
    users.create_user(store, "rina", PASSWORD, "admin")
    t = utcnow()
    waits = []
    for _ in range(40):  # an attacker guessing as fast as the delays allow
        outcome = _outcome(store, "rina", "tebakan", t)
        if outcome.startswith("wait"):
            waits.append(int(outcome.split()[1]))
            t += timedelta(seconds=int(outcome.split()[1]))
    assert max(waits) == 60
    assert _outcome(store, "rina", PASSWORD, t + timedelta(seconds=60)) == "in"


def test_unknown_disabled_and_real_accounts_are_answered_alike(store: Store) -> None:
    users.create_user(store, "siti", PASSWORD, "agent")
    users.create_user(store, "rina", PASSWORD, "admin")
    users.disable_user(store, "rina")
    t = utcnow()
    answers = {
        name: [_outcome(store, name, "salah", t + timedelta(seconds=n)) for n in (0, 0, 0, 0, 0, 0, 1, 1, 2)]
        for name in ("siti", "rina", "hantu")
    }
    assert answers["siti"] == answers["rina"] == answers["hantu"]
    assert "wait 1" in answers["hantu"]


def test_one_address_guessing_across_many_names_is_slowed(store: Store) -> None:
    t = utcnow()
    guesses = [_outcome(store, f"nama{n}", "salah", t, address="203.0.113.9") for n in range(12)]
    assert guesses[:10] == ["wrong"] * 10
    assert guesses[10:] == ["wait 1", "wait 1"]
    assert _outcome(store, "nama99", "salah", t, address="198.51.100.7") == "wrong"  # another address is not


def test_concurrent_misses_are_each_counted(store: Store) -> None:
    users.create_user(store, "siti", PASSWORD, "agent")
    t = utcnow()
    # As many at once as the free misses: every one is a guess checked and counted, none waits.
    start = threading.Barrier(users.ACCOUNT_DELAYS.free)

    def guess() -> None:
        start.wait()
        with contextlib.suppress(AuthError):
            users.check_password(store, "siti", "salah", now=t)

    threads = [threading.Thread(target=guess) for _ in range(users.ACCOUNT_DELAYS.free)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with store.read() as session:
        row = session.execute(select(Throttle).where(col(Throttle.key) == "login-user:siti")).scalar_one()
    assert row.count == users.ACCOUNT_DELAYS.free  # none lost to a read-modify-write race


def test_disabled_and_unknown_users_cannot_sign_in(store: Store) -> None:
    users.create_user(store, "rina", PASSWORD, "admin")
    users.disable_user(store, "rina")
    for username in ("rina", "nobody"):
        with pytest.raises(AuthError):
            users.check_password(store, username, PASSWORD)
    with pytest.raises(users.UserError):
        users.disable_user(store, "nobody")


@pytest.fixture
def cli(db_url: str, tmp_path: Path, store: Store) -> tuple[CliRunner, Path]:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"database": {"url": db_url}, "data_dir": str(tmp_path / "data")}))
    return CliRunner(), config


def test_users_cli_creates_lists_and_disables(cli: tuple[CliRunner, Path], store: Store) -> None:
    runner, config = cli
    created = runner.invoke(
        app,
        ["--config", str(config), "users", "create", "--username", "siti", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert created.exit_code == 0, created.output
    assert users.check_password(store, "siti", PASSWORD).role == "admin"
    short = runner.invoke(
        app, ["--config", str(config), "users", "create", "--username", "budi", "--password-stdin"], input="x\n"
    )
    assert short.exit_code == 2 and "at least" in short.output

    disabled = runner.invoke(app, ["--config", str(config), "users", "disable", "--username", "siti"])
    assert disabled.exit_code == 0
    listed = runner.invoke(app, ["--config", str(config), "users", "list", "--json"])
    assert '"username": "siti"' in listed.output and '"disabled": true' in listed.output


def test_import_csv_cli_skips_bad_rows_and_a_second_run_adds_nothing(
    cli: tuple[CliRunner, Path], store: Store, tmp_path: Path
) -> None:
    runner, config = cli
    sheet = tmp_path / "rekap.csv"
    sheet.write_text(csv_import.sample_csv() + ",,radio,,,,,,,,\r\n", encoding="utf-8")
    command_line = ["--config", str(config), "import-csv", str(sheet), "--as", "siti"]

    first = runner.invoke(app, command_line)
    assert first.exit_code == 1  # a row was skipped: scripts notice
    assert "row 4: isi: wajib diisi" in first.output
    assert "2 new, 0 already imported, 1 rows skipped" in first.output
    second = runner.invoke(app, command_line)
    assert "0 new, 2 already imported" in second.output
    with store.read() as session:
        rows = list(session.execute(select(InboxMessage)).scalars())
    assert [(r.channel, r.provider, r.meta["entered_by"], r.meta["row"]) for r in rows] == [
        ("manual", "csv", "siti", 2),
        ("manual", "csv", "siti", 3),
    ]


def test_migration_0002_goes_down_and_up_again(store: Store) -> None:
    tables = {"staff_user", "web_session", "audit_log"}
    command.downgrade(alembic_config(store), "0001")
    assert not tables & set(inspect(store.engine).get_table_names())
    command.upgrade(alembic_config(store), "head")
    assert tables <= set(inspect(store.engine).get_table_names())
    users.create_user(store, "siti", PASSWORD, "agent")
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(StaffUser)).scalar_one() == 1
