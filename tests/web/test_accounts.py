"""Staff accounts, their CLI, ``import-csv`` and migration 0002, on SQLite and PostgreSQL (no server needed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from alembic import command
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from channels import csv_import
from gateway import users
from gateway.cli import app
from normalizer.errors import AuthError
from sinks.store.db import Store, alembic_config
from sinks.store.models import InboxMessage, StaffUser, utcnow

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


def test_misses_lock_the_account_for_longer_each_time_and_a_good_password_resets(store: Store) -> None:
    users.create_user(store, "siti", PASSWORD, "agent")
    start = utcnow()
    for _ in range(users.FREE_MISSES - 1):
        with pytest.raises(AuthError) as miss:
            users.check_password(store, "siti", "salah", now=start)
        assert not isinstance(miss.value, users.LockedOut)
    with pytest.raises(users.LockedOut) as locked:
        users.check_password(store, "siti", "salah", now=start)
    assert locked.value.until == start + timedelta(minutes=1)
    with pytest.raises(users.LockedOut):  # even the right password waits out the lock
        users.check_password(store, "siti", PASSWORD, now=start + timedelta(seconds=30))

    later = start + timedelta(minutes=2)
    with pytest.raises(users.LockedOut) as again:
        users.check_password(store, "siti", "salah", now=later)
    assert again.value.until == later + timedelta(minutes=2)  # the sixth miss doubles the lock

    assert users.check_password(store, "siti", PASSWORD, now=later + timedelta(minutes=3)).name == "siti"
    with pytest.raises(AuthError) as fresh:
        users.check_password(store, "siti", "salah", now=later + timedelta(minutes=3))
    assert not isinstance(fresh.value, users.LockedOut)


def test_lock_durations_double_up_to_an_hour() -> None:
    assert [users.lock_duration(n) for n in (0, 4)] == [None, None]
    assert users.lock_duration(5) == timedelta(minutes=1)
    assert users.lock_duration(7) == timedelta(minutes=4)
    assert users.lock_duration(500) == timedelta(hours=1)


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
