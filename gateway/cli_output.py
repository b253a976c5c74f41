"""How CLI listings print: ``--format table|json|jsonl`` over rows of dicts (shared by every command group)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console()


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="table, json or jsonl")]


def emit(rows: list[dict[str, Any]], fmt: Format, columns: list[str], title: str) -> None:
    if fmt is Format.json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
    elif fmt is Format.jsonl:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        table = Table(title=title)
        for column in columns:
            # Ids are read out and copied: never wrap them.
            table.add_column(column, no_wrap=column in ("tracking_id", "id"))
        for row in rows:
            table.add_row(*(_cell(row, column) for column in columns))
        out.print(table)


def _cell(row: dict[str, Any], column: str) -> str:
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "…"
