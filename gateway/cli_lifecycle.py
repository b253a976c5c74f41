"""CLI for the lifecycle: ``complaints verify|forward|reject|progress|resolve|reopen|close|events ID``,
``agencies list`` and ``sinks list|enable``. Every change goes through ``gateway.lifecycle``."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console

from gateway import agency_sync, lifecycle
from gateway.cli_common import config_of
from gateway.cli_output import Format, FormatOption, emit
from gateway.config import Config
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries
from sinks.store.db import open_store

agencies_app = typer.Typer(help="Agencies (OPD) complaints are forwarded to.", no_args_is_help=True)
sinks_app = typer.Typer(help="Forwarders: list them, re-enable one that answered 410 Gone.", no_args_is_help=True)

err = Console(stderr=True)
out = Console()
EVENT_COLUMNS = ["id", "at", "from", "to", "actor.name", "agency", "public_note", "notice"]
Note = Annotated[str | None, typer.Option("--note", help="public note: what the citizen and the agency read")]
Internal = Annotated[str | None, typer.Option("--internal-note", help="for staff only")]


def _config(ctx: typer.Context) -> Config:
    return config_of(ctx)


def _change(ctx: typer.Context, tracking_id: str, change: lifecycle.Change, fmt: Format) -> None:
    config = _config(ctx)
    actor = lifecycle.Actor("staff", f"cli:{getpass.getuser()}", admin=True)
    try:
        applied = lifecycle.transition(open_store(config.database.url), config, tracking_id, change, actor)
    except lifecycle.LifecycleError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1 if exc.status in (404, 409) else 2) from None
    emit([applied.event], fmt, EVENT_COLUMNS, applied.record.get("tracking_id", tracking_id))


def _note_command(complaints_app: typer.Typer, name: str, to: str, summary: str) -> None:
    def command(
        ctx: typer.Context,
        tracking_id: str,
        note: Note = None,
        internal_note: Internal = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        _change(ctx, tracking_id, lifecycle.Change(to, note, internal_note, source="cli"), fmt)

    command.__doc__ = summary
    complaints_app.command(name)(command)


def install(complaints_app: typer.Typer) -> None:
    """Add the lifecycle commands to the CLI's ``complaints`` group."""

    @complaints_app.command("verify")
    def verify(
        ctx: typer.Context,
        tracking_id: str,
        note: Note = None,
        internal_note: Internal = None,
        category: Annotated[str | None, typer.Option(help="correct the category while verifying")] = None,
        region: Annotated[str | None, typer.Option(help="correct the region code, e.g. 33.28.05")] = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        """received -> verified (with lifecycle.auto_forward, on to the agency when one rule matches)."""
        change = lifecycle.Change(
            to="verified", public_note=note, internal_note=internal_note, category=category, region_code=region
        )
        _change(ctx, tracking_id, lifecycle.Change(**{**change.__dict__, "source": "cli"}), fmt)

    @complaints_app.command("forward")
    def forward(
        ctx: typer.Context,
        tracking_id: str,
        agency: Annotated[
            str | None, typer.Option(help="agency code; default: the routing rules' unique match")
        ] = None,
        note: Note = None,
        internal_note: Internal = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        """verified -> forwarded to an agency (and its forwarder)."""
        change = lifecycle.Change("forwarded", note, internal_note, agency=agency, source="cli")
        _change(ctx, tracking_id, change, fmt)

    @complaints_app.command("reject")
    def reject(
        ctx: typer.Context,
        tracking_id: str,
        reason: Annotated[str, typer.Option(help=", ".join(lifecycle.REJECT_REASONS))],
        duplicate_of: Annotated[str | None, typer.Option(help="for --reason duplicate: the original")] = None,
        note: Note = None,
        internal_note: Internal = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        """received|verified -> rejected, with a reason the citizen is told in plain words."""
        change = lifecycle.Change(
            "rejected", note, internal_note, reason=reason, duplicate_of=duplicate_of, source="cli"
        )
        _change(ctx, tracking_id, change, fmt)

    # Moves that take only notes: (command, status it moves to, what it does).
    for name, to, summary in (
        ("progress", "in_progress", "forwarded|in_progress -> in_progress, with a progress note (--note)."),
        ("resolve", "resolved", "forwarded|in_progress -> resolved; --note is the answer for the citizen."),
        ("reopen", "in_progress", "resolved -> in_progress (the citizen says it is not done)."),
        ("close", "closed", "resolved -> closed."),
    ):
        _note_command(complaints_app, name, to, summary)

    @complaints_app.command("events")
    def events(ctx: typer.Context, tracking_id: str, fmt: FormatOption = Format.table) -> None:
        """A complaint's status history, oldest first."""
        canonical = canonical_tracking_id(tracking_id) or tracking_id
        with open_store(_config(ctx).database.url).read() as session:
            if queries.complaint_by_tracking_id(session, canonical) is None:
                err.print(f"no complaint {canonical}")
                raise typer.Exit(1)
            rows = [lifecycle.event_view(e) for e in lifecycle.events_of(session, canonical)]
        emit(rows, fmt, EVENT_COLUMNS, canonical)

    @agencies_app.command("list")
    def agencies_list(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
        """The configured agencies and their routing rules."""
        rows = [
            {
                "code": code,
                "name": agency.name,
                "categories": ", ".join(agency.categories),
                "regions": ", ".join(agency.regions),
                "forward": agency.forward or "none",
            }
            for code, agency in _config(ctx).agencies.items()
        ]
        emit(rows, fmt, ["code", "name", "categories", "regions", "forward"], "Agencies")

    @sinks_app.command("list")
    def sinks_list(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
        """Forwarders and whether they are disabled."""
        config = _config(ctx)
        rows = agency_sync.sink_states(config, open_store(config.database.url))
        for row in rows:
            row["disabled"] = row["disabled"]["why"] if row["disabled"] else ""
        emit(rows, fmt, ["name", "type", "target", "disabled"], "Sinks")

    @sinks_app.command("enable")
    def sinks_enable(ctx: typer.Context, name: str) -> None:
        """Re-enable a sink that answered 410 Gone; replay its failed rows after."""
        config = _config(ctx)
        if config.sink(name) is None:
            err.print(f"no sink {name} in the configuration")
            raise typer.Exit(2)
        if not agency_sync.enable(open_store(config.database.url), name):
            err.print(f"sink {name} was not disabled")
            raise typer.Exit(1)
        out.print(f"sink {name} enabled; replay its failed rows with `lapor-gateway failed replay`")
