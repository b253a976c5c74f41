"""CLI for the web side: ``lapor-gateway users create|disable|list`` and ``lapor-gateway import-csv FILE``."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from channels import csv_import
from channels.base import Accept, Accepted, InboxItem
from gateway import users
from gateway.auth import check_agency_binding
from gateway.cli_common import config_of
from gateway.inbox import insert_inbox_row
from normalizer.errors import PayloadError
from sinks.store.db import Store, open_store, upgrade
from sinks.store.models import utcnow

users_app = typer.Typer(help="Accounts for the web pages (call-center agents and admins).", no_args_is_help=True)

out = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message, terminal or not


class Role(StrEnum):
    agent = "agent"
    admin = "admin"
    agency = "agency"


def _store(ctx: typer.Context) -> Store:
    config = config_of(ctx)
    store = open_store(config.database.url)
    upgrade(store)
    return store


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Kata sandi: ")
    if first != getpass.getpass("Ulangi kata sandi: "):
        err.print("passwords do not match")
        raise typer.Exit(2)
    return first


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    username: Annotated[str, typer.Option(help="sign-in name, e.g. siti")],
    role: Annotated[Role, typer.Option(help="agent, admin or agency")] = Role.agent,
    agency: Annotated[str | None, typer.Option(help="for --role agency: the agency code, e.g. dpupr")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Create an account; the password is asked for (or read from stdin) and only its argon2 hash kept."""
    config = config_of(ctx)
    try:
        check_agency_binding(role.value, agency, config.agencies)
    except ValueError as exc:
        err.print(f"users create: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    password = _read_password(password_stdin)
    try:
        user = users.create_user(_store(ctx), username, password, role.value, agency)
    except users.UserError as exc:
        err.print(f"users create: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    out.print(f"user {user.username} ({user.role}) created")


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: Annotated[str, typer.Option(help="whose account")]) -> None:
    """Disable an account; its open sessions end at their next request."""
    try:
        users.disable_user(_store(ctx), username)
    except users.UserError as exc:
        err.print(f"users disable: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    out.print(f"user {username} disabled")


@users_app.command("list")
def users_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False
) -> None:
    """Every account with its role and state."""
    rows = users.list_users(_store(ctx))
    if as_json:
        data = [
            {
                "username": u.username,
                "role": u.role,
                "disabled": u.disabled,
                "created_at": u.created_at.isoformat(),
                "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in rows
        ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    table = Table(title="Users")
    for column in ("username", "role", "state", "last login"):
        table.add_column(column)
    now = utcnow()
    for user in rows:
        locked = user.locked_until is not None and user.locked_until > now
        state = "disabled" if user.disabled else ("locked" if locked else "active")
        table.add_row(user.username, user.role, state, user.last_login_at.isoformat() if user.last_login_at else "")
    out.print(table)


def store_accept(store: Store) -> Accept:
    """The inbox's own insert, one committed row per item: the CLI has no running gateway to hand rows to."""

    async def accept(item: InboxItem) -> Accepted:
        with store.write() as session:
            return insert_inbox_row(session, item, utcnow())

    return accept


def import_csv(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="the CSV recap")],
    entered_by: Annotated[str, typer.Option("--as", help="the staff account the rows are entered by")] = "cli",
) -> None:
    """Import a CSV recap: each good row through the inbox (provider csv); a re-import makes no duplicates."""
    config = config_of(ctx, channels=True)
    if not config.channel("csv").enabled:
        err.print("import-csv: channels.csv.enabled is false in the config")
        raise typer.Exit(2)
    try:
        parsed = csv_import.read_csv(file.read_bytes(), config.categories)
    except PayloadError as exc:
        err.print(f"import-csv: {file}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    for row in parsed.bad:
        err.print(f"row {row.number}: {'; '.join(row.errors)}", markup=False, highlight=False)
    store = _store(ctx)
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task(file.name, total=len(parsed.rows))
        summary = asyncio.run(
            csv_import.submit(
                parsed, store_accept(store), entered_by, file.name, lambda row, accepted: progress.advance(task)
            )
        )
    out.print(f"{summary.new} new, {summary.duplicate} already imported, {summary.skipped} rows skipped")
    if summary.skipped:
        raise typer.Exit(1)
