"""``lapor-gateway``: serve, work, migrate, manage tokens, look at complaints and the failed list."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
import sys
import threading
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import inspect

from gateway import audit, cli_lifecycle, cli_normalizer, cli_web, replay
from gateway.auth import check_agency_binding, create_token, revoke_tokens
from gateway.cli_common import ConfigSource, config_of, fail, say
from gateway.cli_output import Format, FormatOption
from gateway.cli_output import emit as _emit
from gateway.config import DEFAULT_CONFIG_PATH, Config, display_url
from gateway.logs import configure_logging
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries
from sinks.store.db import Store, open_store, upgrade
from sinks.store.models import utcnow

app = typer.Typer(help="lapor-gateway: every channel's complaints into one store.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for call-center staff (agent) and admins (admin).", no_args_is_help=True)
complaints_app = typer.Typer(help="Stored complaints.", no_args_is_help=True)
failed_app = typer.Typer(help="Messages that failed: see them, replay them.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tokens_app, name="tokens")
app.add_typer(complaints_app, name="complaints")
app.add_typer(failed_app, name="failed")
app.add_typer(cli_web.users_app, name="users")
app.command("import-csv")(cli_web.import_csv)
cli_normalizer.register(app, complaints_app)

out = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message, terminal or not


class Role(StrEnum):
    agent = "agent"
    admin = "admin"
    agency = "agency"


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="LAPOR_GATEWAY_CONFIG", help="config.yaml to read", show_default=False),
    ] = None,
) -> None:
    # No --config and no ./config.yaml: the embedded defaults (SQLite under data/, HTTP on 127.0.0.1:8080).
    if config is None and DEFAULT_CONFIG_PATH.exists():
        config = DEFAULT_CONFIG_PATH
    source = ConfigSource(config)
    # Read without the channels blocks here: only the commands that start channels need their secrets.
    light = source.get(channels=False)
    configure_logging(light.logging.level, light.logging.format)
    ctx.obj = source
    ctx.meta["config_path"] = config  # `serve --workers N` children read the same file


def _config(ctx: typer.Context, channels: bool = False) -> Config:
    return config_of(ctx, channels)


def _store(ctx: typer.Context) -> Store:
    return open_store(_config(ctx).database.url)


def _migrated_store(ctx: typer.Context) -> Store:
    """The store for commands that read it: one line, not a traceback, when it was never migrated."""
    store = _store(ctx)
    if not inspect(store.engine).has_table("complaint"):
        url = display_url(_config(ctx).database.url)
        raise fail(f"database {url} has no tables yet — run .venv/bin/lapor-gateway db upgrade (serve does it too)")
    return store


@app.command()
def serve(
    ctx: typer.Context,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, help="HTTP processes on the port (default http.workers)")
    ] = None,
) -> None:
    """Run the gateway: HTTP, channel listeners and (by default) the worker, in one process or N."""
    from gateway import serving

    config = _config(ctx, channels=True)
    count, note = serving.effective_workers(config, workers)
    if note is not None:
        err.print(note, markup=False, highlight=False, soft_wrap=True)
    store = open_store(config.database.url, echo=config.database.echo)
    upgrade(store)  # once, before any child starts
    store.dispose()
    say(
        f"lapor-gateway serve: database {display_url(config.database.url)}, "
        f"http://{config.http.host}:{config.http.port}, {count} process{'es' if count > 1 else ''}"
    )
    serving.run(config, ctx.meta.get("config_path"), count)


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run a worker only (scale out: as many as you like, on PostgreSQL)."""
    from gateway.app import Gateway
    from gateway.serving import freeze_startup_heap
    from gateway.worker import run_forever

    config = _config(ctx, channels=True)
    # Said before the normalizer's models load (a few seconds), so an operator sees at once that it started.
    say(f"lapor-gateway worker: database {display_url(config.database.url)}, starting (Ctrl-C stops)")
    gateway = Gateway(config, open_store(config.database.url, echo=config.database.echo), runs_worker=True)
    freeze_startup_heap()
    stop = threading.Event()

    def request_stop(*_: object) -> None:
        stop.set()
        gateway.worker.wake.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    run_forever(gateway.worker, stop)


@app.command()
def purge(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would go, change nothing")] = False,
) -> None:
    """Purge raw payloads and attachment files past retention.raw_days (workers also do it daily)."""
    from gateway.retention import purge as run_purge

    config = _config(ctx)
    report = run_purge(_store(ctx), config.data_dir, config.retention.raw_days, utcnow(), dry_run=dry_run)
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = "head") -> None:
    """Apply the Alembic migrations."""
    upgrade(_store(ctx), revision)
    out.print(f"database {display_url(_config(ctx).database.url)} at revision {revision}", markup=False, soft_wrap=True)


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="who uses it, e.g. siti")],
    role: Annotated[Role, typer.Option(help="agent, admin or agency")] = Role.agent,
    agency: Annotated[str | None, typer.Option(help="for --role agency: the agency code, e.g. dpupr")] = None,
) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    try:
        check_agency_binding(role.value, agency, _config(ctx).agencies)
    except ValueError as exc:
        err.print(f"tokens create: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    store = _store(ctx)
    upgrade(store)
    token = create_token(store, name, role.value, agency)
    err.print(f"token for {name} ({role.value}); it is shown only this once:", highlight=False)
    print(token)


@tokens_app.command("revoke")
def tokens_revoke(ctx: typer.Context, name: Annotated[str, typer.Option(help="whose tokens to revoke")]) -> None:
    """Revoke every token of NAME."""
    count = revoke_tokens(_migrated_store(ctx), name)
    out.print(f"revoked {count} token(s) of {name}")
    if count == 0:
        raise typer.Exit(1)


COMPLAINT_COLUMNS = ["tracking_id", "received_at", "channel", "source", "kind", "category", "reporter.name", "body"]


@complaints_app.command("list")
def complaints_list(
    ctx: typer.Context,
    fmt: FormatOption = Format.table,
    channel: Annotated[str | None, typer.Option(help="sms, whatsapp, telegram, email, manual")] = None,
    since: Annotated[datetime | None, typer.Option(help="received at or after (ISO date/time, UTC)")] = None,
    q: Annotated[str | None, typer.Option(help="text to search for")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """Newest complaints first."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=queries.now().tzinfo)
    with _migrated_store(ctx).read() as session:
        page = queries.list_complaints(session, channel=channel, since=since, q=q, limit=limit)
        rows = [queries.complaint_record(c) for c in page.items]
    _emit(rows, fmt, COMPLAINT_COLUMNS, "Complaints")


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


@complaints_app.command("export")
def complaints_export(
    ctx: typer.Context,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="jsonl or csv")] = ExportFormat.jsonl,
    since: Annotated[datetime | None, typer.Option(help="received at or after (ISO date/time, UTC)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Every complaint, oldest first, streamed in pages (constant memory, any number of records)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from gateway import export

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=queries.now().tzinfo)
    store = _store(ctx)
    writer = export.write_csv if fmt is ExportFormat.csv else export.write_jsonl
    # A progress bar only for a person at a terminal, on stderr: the records stay clean on stdout.
    show = err.is_terminal
    with (
        open(output, "w", encoding="utf-8", newline="") if output else _stdout() as sink,
        Progress(
            TextColumn("export"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not show,
        ) as progress,
    ):
        total = None
        if show:
            with store.read() as session:
                total = queries.count_complaints(session, since)
        task = progress.add_task("export", total=total)
        count = writer(export.records(store, since), sink, lambda: progress.advance(task))
    store.dispose()
    err.print(f"exported {count} complaint(s)", highlight=False)


def _stdout() -> Any:
    """stdout for ``with``, left open afterwards."""
    import contextlib

    return contextlib.nullcontext(sys.stdout)


@complaints_app.command("show")
def complaints_show(ctx: typer.Context, tracking_id: str, fmt: FormatOption = Format.json) -> None:
    """One complaint by its tracking id."""
    canonical = canonical_tracking_id(tracking_id) or tracking_id
    with _migrated_store(ctx).read() as session:
        found = queries.complaint_by_tracking_id(session, canonical)
        record = queries.complaint_record(found) if found else None
    if record is None:
        err.print(f"no complaint {canonical}")
        raise typer.Exit(1)
    _emit([record], fmt, COMPLAINT_COLUMNS, canonical)


FAILED_COLUMNS = ["id", "channel", "provider", "target", "attempts", "error_type", "error"]


@failed_app.command("list")
def failed_list(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Inbox and outbox rows that gave up."""
    _emit(replay.list_failed(_migrated_store(ctx)), fmt, FAILED_COLUMNS, "Failed messages")


def _ref(text: str) -> replay.FailedRef:
    try:
        return replay.parse_ref(text)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None


@failed_app.command("show")
def failed_show(ctx: typer.Context, failed_id: str, fmt: FormatOption = Format.json) -> None:
    """A failed message with its raw payload, headers, error and attempts."""
    view = replay.show_failed(_migrated_store(ctx), _ref(failed_id))
    if view is None:
        err.print(f"no failed message {failed_id}")
        raise typer.Exit(1)
    _emit([view], fmt, FAILED_COLUMNS, failed_id)


@failed_app.command("replay")
def failed_replay(
    ctx: typer.Context,
    failed_id: str,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what it would make, change nothing")] = False,
) -> None:
    """Put a failed message back in the queue (a replay never makes a second complaint)."""
    store, ref = _migrated_store(ctx), _ref(failed_id)
    if dry_run:
        try:
            preview = replay.preview(store, _config(ctx, channels=True), ref)
            out.print_json(json.dumps(preview, ensure_ascii=False, default=str))
        except LookupError as exc:
            err.print(str(exc))
            raise typer.Exit(1) from None
        return
    # The audit log names who replayed: the operator's login on this machine.
    if not audit.audited_replay(store, ref, f"cli:{getpass.getuser()}"):
        err.print(f"{ref} is not in the failed list")
        raise typer.Exit(1)
    out.print(f"{ref} is pending again")


reporters_app = typer.Typer(help="Citizens' personal data (UU PDP requests).", no_args_is_help=True)
app.add_typer(reporters_app, name="reporters")


@reporters_app.command("forget")
def reporters_forget(
    ctx: typer.Context,
    phone: Annotated[str | None, typer.Option(help="the reporter's phone number, any spelling")] = None,
    email: Annotated[str | None, typer.Option(help="the reporter's e-mail address")] = None,
    telegram_id: Annotated[str | None, typer.Option("--telegram-id", help="the reporter's Telegram user id")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what it would touch, change nothing")] = False,
) -> None:
    """Remove a reporter's identity from complaints, raw messages, outbox and attachments; keep the complaints."""
    from gateway import forget

    store = _store(ctx)
    upgrade(store)
    try:
        done = forget.forget(
            store, f"cli:{getpass.getuser()}", phone=phone, email=email, telegram_id=telegram_id, dry_run=dry_run
        )
    except ValueError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
    out.print_json(json.dumps({"dry_run": dry_run, **done.summary()}))


telegram_app = typer.Typer(help="Telegram bot set-up.", no_args_is_help=True)
app.add_typer(telegram_app, name="telegram")


@telegram_app.command("set-webhook")
def telegram_set_webhook(ctx: typer.Context) -> None:
    """Register <http.public_url>/webhooks/telegram with Telegram (setWebhook with the secret token)."""
    from channels.telegram import TelegramSettings, register_webhook

    config = _config(ctx, channels=True)
    settings = config.channel("telegram")
    if not isinstance(settings, TelegramSettings) or not settings.enabled or settings.mode != "webhook":
        err.print("config: channels.telegram must be enabled with mode: webhook to set a webhook", markup=False)
        raise typer.Exit(2)
    url = asyncio.run(register_webhook(settings, config.http.public_url))
    out.print(f"webhook set: {url}", markup=False)


cli_lifecycle.install(complaints_app)
app.add_typer(cli_lifecycle.agencies_app, name="agencies")
app.add_typer(cli_lifecycle.sinks_app, name="sinks")


def main() -> None:
    os.environ.setdefault("PYTHONUTF8", "1")
    app()
