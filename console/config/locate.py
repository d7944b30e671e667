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
    """Every table header and key in the text, mapped to its 1-based line.

    Paths are as tomllib builds them: a table inside an array of tables gets the
    array's index (``("decision_matrix", 2, "action")``). Tables a header or a
    dotted key creates implicitly map to the first line that creates them.
    """
    explicit: dict[Path, int] = {}
    implicit: dict[Path, int] = {}
    arrays: dict[Path, int] = {}  # array of tables → index of its last [[table]]
    table: list[str | int] = []
    closing: str | None = None  # the delimiter that ends the multi-line string we are in

    def resolve(parts: list[str]) -> list[str | int]:
        out: list[str | int] = []
        for part in parts:
            out.append(part)
            if tuple(out) in arrays:
                out.append(arrays[tuple(out)])
        return out

    def parents(path: list[str | int], number: int) -> None:
        for end in range(1, len(path)):
            if not isinstance(path[end - 1], int):
                implicit.setdefault(tuple(path[:end]), number)

    # TOML lines end at "\n" only (tomllib counts lines so); str.splitlines would
    # also split at \u2028, \x85, \x0c, ... which may appear in strings and comments.
    for number, line in enumerate(text.split("\n"), start=1):
        if closing:
            if line.count(closing) % 2 == 1:
                closing = None
            continue
        header = _HEADER.match(line)
        if header and "=" not in line.split("]")[0]:
            parts = _parts(header.group(2))
            if header.group(1) == "[[":
                array = (*resolve(parts[:-1]), parts[-1])
                arrays[array] = arrays.get(array, -1) + 1
                explicit.setdefault(array, number)
                table = [*array, arrays[array]]
            else:
                table = resolve(parts)
            parents(table, number)
            explicit.setdefault(tuple(table), number)
            continue
        key = _KEY.match(line)
        if key:
            path = [*table, *_parts(key.group(1))]
            parents(path, number)
            explicit.setdefault(tuple(path), number)
            rest = line[key.end() :]
            for delimiter in ('"""', "'''"):
                if rest.count(delimiter) % 2 == 1:
                    closing = delimiter
                    break
    return {**implicit, **explicit}


def locate(index: dict[Path, int], path: Path) -> int | None:
    """The line of the key, or of its nearest written parent."""
    probe = tuple(path)
    while probe:
        if probe in index:
            return index[probe]
        probe = probe[:-1]
    return None
