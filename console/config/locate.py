"""Find the line a TOML key was written on, so errors can say file, line and key.

tomllib gives no positions; this reads the text line by line, tracking the
current table, and maps each key to its line. Good enough for error messages.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'""")

Path = tuple[str | int, ...]


def _parts(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in _PART.findall(dotted)]


def key_lines(text: str) -> dict[Path, int]:
    """Every table header and key in the text, mapped to its 1-based line."""
    lines: dict[Path, int] = {}
    table: list[str | int] = []
    array_counts: dict[tuple, int] = {}
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = False
            continue
        header = _HEADER.match(line)
        if header and "=" not in line.split("]")[0]:
            parts = _parts(header.group(2))
            if header.group(1) == "[[":
                key = tuple(parts)
                index = array_counts.get(key, 0)
                array_counts[key] = index + 1
                table = [*parts, index]
                lines.setdefault(tuple(parts), number)
            else:
                table = list(parts)
            lines.setdefault(tuple(table), number)
            continue
        key = _KEY.match(line)
        if key:
            path = (*table, *_parts(key.group(1)))
            lines.setdefault(path, number)
            rest = line[key.end() :]
            if rest.count('"""') % 2 == 1 or rest.count("'''") % 2 == 1:
                in_multiline = True
    return lines


def locate(index: dict[Path, int], path: Path) -> int | None:
    """The line of the key, or of its nearest written parent."""
    probe = tuple(path)
    while probe:
        if probe in index:
            return index[probe]
        probe = probe[:-1]
    return None
