"""What every CLI command shares: the config, read once per kind of command, and one-line errors."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import typer

from gateway.config import Config, load_config
from normalizer.errors import ConfigError


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr (never wrapped, terminal or not) and give the exit to raise."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    return typer.Exit(code)


def say(message: str) -> None:
    """A start-up line for the operator on stderr (stdout stays for what commands print as data)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@dataclass
class ConfigSource:
    """The config file of this run. Commands that start no channel do not read the ``channels`` blocks,
    so `complaints show` works in a shell that has the database settings but no channel secrets."""

    path: Path | None
    _loaded: dict[bool, Config] = field(default_factory=dict)

    def get(self, channels: bool) -> Config:
        if channels not in self._loaded:
            try:
                self._loaded[channels] = load_config(self.path, channels=channels)
            except ConfigError as exc:
                raise fail(str(exc)) from None
        return self._loaded[channels]


def config_of(ctx: typer.Context, channels: bool = False) -> Config:
    source: ConfigSource = ctx.find_object(ConfigSource) or ctx.ensure_object(ConfigSource)
    return source.get(channels)
