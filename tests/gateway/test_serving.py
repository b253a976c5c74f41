"""``serve --workers N``: how many HTTP processes, and the one place their uvicorn options come from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config import Config
from gateway.serving import effective_workers, uvicorn_options
from normalizer.errors import ConfigError
from tests.conftest import POSTGRES_URL, build_config


def test_sqlite_serves_one_process_and_says_so(tmp_path: Path) -> None:
    config = build_config("sqlite:///lapor.db", tmp_path, http={"workers": 4})
    workers, note = effective_workers(config, None)
    assert workers == 1
    assert note is not None and "SQLite" in note and "4" in note and "PostgreSQL" in note
    assert effective_workers(config, 1) == (1, None)


def test_postgresql_serves_as_many_processes_as_asked(tmp_path: Path) -> None:
    config = build_config(POSTGRES_URL, tmp_path, http={"workers": 3})
    assert effective_workers(config, None) == (3, None)
    assert effective_workers(config, 2) == (2, None)  # --workers wins over http.workers


def test_http_workers_below_one_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"http\.workers"):
        build_config("sqlite:///lapor.db", tmp_path, http={"workers": 0})


def test_every_process_gets_the_same_uvicorn_options_from_the_config(make_config: Callable[..., Config]) -> None:
    config = make_config(http={"host": "127.0.0.1", "port": 18080})
    options = uvicorn_options(config)
    assert (options["host"], options["port"]) == ("127.0.0.1", 18080)
    # httptools, with the head deadline of gateway/limits.py on top.
    assert options["loop"] == "uvloop"
    protocol = import_from_string(options["http"])  # an import path: the pre-fork master pickles its options
    assert issubclass(protocol, HttpToolsProtocol)
    assert protocol.header_timeout_s == config.http.header_timeout_s
