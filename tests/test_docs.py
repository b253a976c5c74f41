"""The docs stay true: every config block under docs/ and in the README loads through the real config model.

A ```yaml block is a gateway config unless its info string names something else (```yaml prometheus,
```yaml compose …). Pages added later are walked too. ``${VAR}``s get stand-in values that pass the
format checks (a Telegram token looks like one, an SMPP password fits 8 characters).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway.config import load_config
from tests.support.docs import Block, doc_pages, fenced_blocks

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A stand-in that passes every channel's format check (letters and digits, 8 characters).
_STAND_IN = "doctest1"
# Variables whose value has a format of its own; a new one that fails the check goes here.
_STAND_INS = {
    "TELEGRAM_TOKEN": "123456789:doctest-token",
    "LAPOR_PUSAT_SECRET": "whsec_ZG9jLXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmchISE=",
}


def config_blocks() -> list[Block]:
    return [block for page in doc_pages() for block in fenced_blocks(page) if block.info in ("yaml", "yml")]


def stand_ins(text: str) -> dict[str, str]:
    """A value for every ``${VAR}`` the text names."""
    return {name: _STAND_INS.get(name, _STAND_IN) for name in _VAR.findall(text)}


def test_the_docs_have_config_blocks_to_check() -> None:
    pages = {block.path.name for block in config_blocks()}
    assert {"kannel.md", "telegram.md", "smpp.md", "jasmin.md", "whatsapp.md"} <= pages


@pytest.mark.parametrize("block", config_blocks(), ids=lambda block: block.where)
def test_every_config_block_loads_through_the_config_model(block: Block, tmp_path: Path) -> None:
    assert isinstance(yaml.safe_load(block.text), dict), f"{block.where}: a config block is a mapping"
    path = tmp_path / "config.yaml"
    path.write_text(block.text, encoding="utf-8")
    load_config(path, environ=stand_ins(block.text))  # raises ConfigError naming the key


def test_config_example_loads(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "config.example.yaml").read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    load_config(path, environ=stand_ins(text))
