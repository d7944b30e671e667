"""Tables that fit the terminal: fixed columns keep their width, the others share what is
left and wrap (rows grow taller) instead of running off the right edge at 80 columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.widgets import DataTable

SCROLLBAR = 2  # room kept for a vertical scrollbar


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # fixed; None: a share of what is left
    weight: int = 1
    min_width: int = 6


def widths(available: int, columns: Sequence[Column], padding: int = 1) -> list[int]:
    """Each column's content width in a table ``available`` cells wide."""
    room = available - 2 * padding * len(columns) - SCROLLBAR
    rest = max(0, room - sum(c.width or 0 for c in columns))
    weights = sum(c.weight for c in columns if c.width is None) or 1
    return [c.width if c.width is not None else max(c.min_width, rest * c.weight // weights) for c in columns]


def refill(table: DataTable, available: int, columns: Sequence[Column], rows: Sequence[tuple[str, Sequence]]) -> None:
    """Rebuild the table for this width: wrapped cells, each row as tall as it needs."""
    cursor = table.cursor_row
    table.clear(columns=True)
    for column, width in zip(columns, widths(available, columns, table.cell_padding), strict=True):
        table.add_column(column.label, key=column.key, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key, height=None)
    if rows:
        table.move_cursor(row=max(0, min(cursor, len(rows) - 1)))
