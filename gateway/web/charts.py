"""Server-rendered SVG bar charts: no script, no inline style, so they pass the strict CSP as they are.

``bar_chart([("Kabupaten Tegal", 12), ("Kota Tegal", 3)], title="Per wilayah")``
returns markup to put straight into a template (``{{ chart }}``): one horizontal
bar per row, its label on the left and the count at its end, scaled to the largest
count. Labels are escaped here; colours are SVG presentation attributes (not CSS),
and the chart carries ``role="img"`` with a title and a description listing the
numbers, for screen readers. Reused by the recap and the per-agency pages.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

LABEL_WIDTH = 190
BAR_AREA = 300
ROW_HEIGHT = 22
BAR_HEIGHT = 14
COLOUR = "#1f5f99"
HIGHLIGHT = "#a3261b"  # a bar to stand out (urgent, overdue...)


def _clip(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    rows: Sequence[tuple[str, int]],
    title: str,
    highlight: Sequence[str] = (),
    max_rows: int = 15,
) -> Markup:
    """An SVG bar chart of (label, count) rows, largest first as given; ``highlight`` names bars to colour."""
    shown = list(rows[:max_rows])
    if len(rows) > max_rows:
        shown.append((f"lainnya ({len(rows) - max_rows})", sum(count for _, count in rows[max_rows:])))
    largest = max((count for _, count in shown), default=0)
    height = max(len(shown), 1) * ROW_HEIGHT + 8
    width = LABEL_WIDTH + BAR_AREA + 50
    summary = "; ".join(f"{label}: {count}" for label, count in shown) or "tidak ada data"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title><desc>{escape(summary)}</desc>",
    ]
    for index, (label, count) in enumerate(shown):
        y = index * ROW_HEIGHT + 4
        length = round(BAR_AREA * count / largest) if largest else 0
        colour = HIGHLIGHT if label in highlight else COLOUR
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR_HEIGHT - 2}" text-anchor="end" font-size="12" '
            f'fill="#222">{escape(_clip(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{max(length, 1)}" height="{BAR_HEIGHT}" fill="{colour}"/>'
            f'<text x="{LABEL_WIDTH + max(length, 1) + 5}" y="{y + BAR_HEIGHT - 2}" font-size="12" '
            f'fill="#222">{count}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
