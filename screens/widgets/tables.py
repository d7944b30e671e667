"""Tables that fit the terminal: fixed columns keep their width, the others share what is
left and wrap (rows grow taller) instead of running off the right edge at 80 columns. A
shared column is kept as wide as its longest word where the room allows, so a word such as
"recommendations" is not cut in two; cells are wrapped here, at spaces and after hyphens
("partial-time-" then "weighting"), where Rich would cut a hyphenated word anywhere."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

SCROLLBAR = 2  # room kept for a vertical scrollbar


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # fixed; None: a share of what is left
    weight: int = 1
    min_width: int = 6


# A word up to a hyphen inside it ("partial-", not the "-" of "-5"), a word, or spaces.
_PIECE = re.compile(r"[^\s-]+-+(?=[^\s-])|\S+|\s+")


def longest_word(cells: Sequence[object]) -> int:
    """The widest piece these cells can be wrapped at (words split at spaces and after a
    hyphen inside them)."""
    pieces = (p for cell in cells for p in _PIECE.findall(cell.plain if isinstance(cell, Text) else str(cell)))
    return max((cell_len(p) for p in pieces if not p.isspace()), default=0)


def wrap(cell: object, width: int) -> object:
    """A Text cell broken into lines of at most ``width`` cells at spaces and after hyphens,
    styles kept; a piece wider than the column is left for Rich to fold."""
    if not isinstance(cell, Text) or width <= 0:
        return cell
    lines: list[Text] = []
    for line in cell.split("\n"):
        offsets: list[int] = []
        used, at = 0, 0
        for piece in _PIECE.findall(line.plain):
            if piece.isspace():
                used += cell_len(piece) if used else 0  # a line's leading spaces are dropped
            else:
                if used and used + cell_len(piece) > width:
                    offsets.append(at)
                    used = 0
                used += cell_len(piece)
            at += len(piece)
        for i, part in enumerate(line.divide(offsets)):
            part.rstrip()
            if i:
                part = part[len(part.plain) - len(part.plain.lstrip()) :]
            lines.append(part)
    return Text("\n").join(lines)


def widths(
    available: int, columns: Sequence[Column], padding: int = 1, rows: Sequence[Sequence[object]] = ()
) -> list[int]:
    """Each column's content width in a table ``available`` cells wide: shares of what the
    fixed columns leave, by weight, each widened to its longest word (taken back from the
    others' spare room) as far as the room allows."""
    room = available - 2 * padding * len(columns) - SCROLLBAR
    rest = max(0, room - sum(c.width or 0 for c in columns))
    weights = sum(c.weight for c in columns if c.width is None) or 1
    out = [c.width if c.width is not None else max(c.min_width, rest * c.weight // weights) for c in columns]
    need = [
        max(c.min_width, longest_word([c.label, *(row[i] for row in rows if i < len(row))])) if c.width is None else 0
        for i, c in enumerate(columns)
    ]
    flexible = [i for i, c in enumerate(columns) if c.width is None]
    if sum(need[i] for i in flexible) > rest:
        return out  # not enough room for every word whole: the plain shares
    for i in flexible:
        out[i] = max(out[i], need[i])
    while sum(out[i] for i in flexible) > rest:
        # Give back from the column with the most to spare beyond its longest word.
        spare = max(flexible, key=lambda i: (out[i] - need[i]) / columns[i].weight)
        out[spare] -= 1
    return out


def refill(table: DataTable, available: int, columns: Sequence[Column], rows: Sequence[tuple[str, Sequence]]) -> None:
    """Rebuild the table for this width: wrapped cells, each row as tall as it needs."""
    cursor = table.cursor_row
    table.clear(columns=True)
    cells = [cells for _, cells in rows]
    for column, width in zip(columns, widths(available, columns, table.cell_padding, cells), strict=True):
        table.add_column(column.label, key=column.key, width=width)
    sizes = [c.width for c in table.ordered_columns]
    for key, cells in rows:
        table.add_row(*(wrap(cell, size) for cell, size in zip(cells, sizes, strict=False)), key=key, height=None)
    if rows:
        table.move_cursor(row=max(0, min(cursor, len(rows) - 1)))
