"""``lapor-gateway normalizer evaluate|train`` and ``complaints renormalize``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gateway.cli_common import config_of
from gateway.normalizer_models import (
    HELDOUT_FILE,
    TRAIN_FILE,
    load_understanding,
    read_examples,
    train_and_save,
)
from gateway.renormalize import corrected_examples, count, renormalize
from normalizer.classify import Example
from normalizer.evaluate import NONE_LABEL, Evaluation, evaluate
from normalizer.understand import Understanding
from sinks.store.db import open_store, upgrade

normalizer_app = typer.Typer(help="The normalizer's models: evaluate, retrain.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")]


def register(app: typer.Typer, complaints_app: typer.Typer) -> None:
    app.add_typer(normalizer_app, name="normalizer")
    complaints_app.command("renormalize")(complaints_renormalize)


def _understanding(ctx: typer.Context) -> Understanding:
    config = config_of(ctx)
    understanding = load_understanding(config)
    if understanding is None:
        err.print("config: normalizer.enabled is false — set it to true to use the normalizer", markup=False)
        raise typer.Exit(2)
    return understanding


def _examples(path: Path) -> list[Example]:
    try:
        return read_examples(path)
    except (FileNotFoundError, ValueError) as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None


@normalizer_app.command("evaluate")
def evaluate_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="labelled JSON lines (text, category, kind...)")] = HELDOUT_FILE,
    fmt: FormatOption = OutputFormat.table,
    misses: Annotated[bool, typer.Option("--misses", help="also list the examples read wrongly")] = False,
) -> None:
    """Category macro-F1 (per class, with the confusion table), kind, priority and region accuracy."""
    result = evaluate(_examples(file), _understanding(ctx))
    if fmt is OutputFormat.json:
        data = result.as_dict()
        if not misses:
            data.pop("misses")
        out.print_json(json.dumps(data, ensure_ascii=False))
        return
    _print_evaluation(result, file, misses)


def _print_evaluation(result: Evaluation, file: Path, misses: bool) -> None:
    table = Table(title=f"Category on {file.name} ({result.examples} reports, normalizer {result.version})")
    for column in ("category", "precision", "recall", "f1-score", "support"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for code, row in result.per_class.items():
        table.add_row(code, f"{row['precision']:.2f}", f"{row['recall']:.2f}", f"{row['f1']:.2f}", str(row["support"]))
    table.add_section()
    table.add_row("macro avg", "", "", f"{result.macro_f1:.3f}", str(result.examples))
    out.print(table)

    # The confusion matrix folded to fit a terminal: per labelled class, how many were read right and as what.
    confusion = Table(title="Confusion (labelled → read)")
    confusion.add_column("labelled", no_wrap=True)
    confusion.add_column("right", justify="right")
    confusion.add_column("read as")
    for want in sorted(result.confusion):
        counts = result.confusion[want]
        others = sorted(((n, got) for got, n in counts.items() if got != want), reverse=True)
        confusion.add_row(want, str(counts.get(want, 0)), ", ".join(f"{got} {n}" for n, got in others))
    out.print(confusion)

    summary = Table(title="Kind, priority, region")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    summary.add_row("kind accuracy", f"{result.kind_accuracy:.3f}")
    summary.add_row("priority accuracy", f"{result.priority_accuracy:.3f}")
    summary.add_row("region accuracy", f"{result.region_accuracy:.3f}")
    summary.add_row("spurious-region rate", f"{result.spurious_region_rate:.3f}")
    out.print(summary)
    if misses:
        for miss in result.misses:
            wrong = ", ".join(f"{k}: {v['want']} → {v['got']}" for k, v in miss.items() if k != "text")
            out.print(f"- {miss['text']}  [{wrong}]", markup=False, highlight=False)
    if NONE_LABEL in result.confusion:
        out.print(f"{NONE_LABEL}: labelled without a category", highlight=False)


@normalizer_app.command("train")
def train_command(
    ctx: typer.Context,
    sources: Annotated[
        list[Path] | None, typer.Option("--from", help="more labelled JSON lines to learn from (repeatable)")
    ] = None,
    from_store: Annotated[
        bool, typer.Option("--from-store", help="also learn from categories staff set or corrected")
    ] = False,
) -> None:
    """Retrain the category and kind models (shipped examples plus --from files and --from-store)."""
    config = config_of(ctx)
    added: list[Example] = []
    for source in sources or []:
        added += _examples(source)
    known = set(config.categories)
    # Only the operator's files are checked: shipped codes a region's own taxonomy lacks are learnt as none.
    unknown = sorted({e.category for e in added if e.category and e.category not in known})
    if unknown:
        err.print(f"training data: category {unknown[0]} is not in the taxonomy — fix the file or the config")
        raise typer.Exit(2)
    examples = _examples(TRAIN_FILE) + added
    learnt = 0
    if from_store:
        store = open_store(config.database.url)
        upgrade(store)
        corrected = corrected_examples(store)
        learnt = len(corrected)
        examples += corrected
    classifier = train_and_save(config.data_dir, examples, list(config.categories))
    out.print(
        f"trained on {classifier.trained_on} reports ({learnt} from the store); "
        f"normalizer {classifier.version}, saved under {config.data_dir / 'normalizer'}",
        highlight=False,
    )


def complaints_renormalize(
    ctx: typer.Context,
    since: Annotated[datetime | None, typer.Option(help="only complaints received at or after (ISO, UTC)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would change, change nothing")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Re-run the normalizer over stored raw messages; only fields that were automatic change."""
    config = config_of(ctx)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    understanding = _understanding(ctx)
    store = open_store(config.database.url)
    upgrade(store)
    total = count(store, since)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("renormalizing", total=total)
        result = renormalize(
            store,
            understanding,
            config.keywords,
            since=since,
            dry_run=dry_run,
            progress=lambda done: progress.advance(task, done),
        )
    summary = {
        "seen": result.seen,
        "changed": result.changed,
        "fields": result.fields,
        "without_raw": result.no_raw,
        "dry_run": dry_run,
        "normalizer": understanding.version,
    }
    if fmt is OutputFormat.json:
        out.print_json(json.dumps({**summary, "changes": result.changes}, ensure_ascii=False))
        return
    table = Table(title=("would change" if dry_run else "changed") + f" (normalizer {understanding.version})")
    for column in ("tracking_id", "field", "new value"):
        table.add_column(column, no_wrap=column == "tracking_id")
    for change in result.changes:
        for name, value in change.items():
            if name != "tracking_id":
                table.add_row(change["tracking_id"], name, "" if value is None else str(value)[:60])
    out.print(table)
    fields = ", ".join(f"{k} {v}" for k, v in sorted(result.fields.items())) or "nothing"
    out.print(
        f"{result.seen} complaints read, {result.changed} {'would change' if dry_run else 'changed'} ({fields}); "
        f"{result.no_raw} without a raw message",
        highlight=False,
    )
