"""The fenced blocks of the README and docs/, for the tests that keep them true."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    info: str  # the info string after the fence: "yaml", "sh doc-test:try-it", "conf kannel.conf"
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, info, start = opening.group(2), opening.group(3).strip(), index
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index])
            index += 1
        blocks.append(Block(path, start + 1, info, textwrap.dedent("\n".join(body)) + "\n"))
        index += 1
    return blocks


def doc_pages() -> list[Path]:
    """The README and every page under docs/ (pages other engineers add are found too)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
