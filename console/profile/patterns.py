"""Templates a profile writes and what the console makes of them.

- The flag line: ``features: fast={fast} cache={cache}``,
  one ``{flag id}`` per flag, ``{{``/``}}`` for a literal brace. It becomes a Python regular
  expression (for lines read here) and a POSIX ERE (for awk on the host, which judges
  the log where it lies), both matched anywhere in the line as the runbook's grep does.
- The plain log line: ``[{level}] {logger}: {message}`` (fields: time, level, logger, message).
- Command and request templates: ``{name}``, ``{name:q}`` shell-quoted, ``{a|b}`` the first
  that is set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[^{}]+|[{}]")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\|[A-Za-z_][A-Za-z0-9_]*)*)(:q)?\}")
_ERE_SPECIAL = set("\\.[]()*+?{}|^$/")
LOG_FIELDS = ("time", "level", "logger", "message")
_FIELD_RE = {
    "time": r"(?P<time>\S+)",  # one word: 2025-11-21T03:10:00Z
    "level": r"(?P<level>[A-Za-z]+)",
    "logger": r"(?P<logger>\S+?)",
    "message": r"(?P<message>.*)",
}


class TemplateError(ValueError):
    """The template cannot be used; the message says why."""


def split(template: str) -> list[tuple[str, str]]:
    """(kind, text) pieces: ("text", literal) and ("field", name). TemplateError on a stray brace."""
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(template):
        token = m.group(0)
        if token in ("{{", "}}"):
            out.append(("text", token[0]))
        elif m.group(1) is not None:
            out.append(("field", m.group(1).strip()))
        elif token in ("{", "}"):
            raise TemplateError(f"a lone {token!r} at column {m.start() + 1} (write {token * 2} for a literal brace)")
        else:
            out.append(("text", token))
    return out


def ere_escape(text: str) -> str:
    """``text`` as a POSIX ERE matching itself, fit to stand between awk's slashes."""
    return "".join("\\" + c if c in _ERE_SPECIAL else c for c in text)


@dataclass(frozen=True)
class FlagLine:
    """How the service reports its flags in its log: a template and the words for on and off."""

    template: str
    on: str
    off: str
    order: tuple[str, ...]  # flag ids in the order the line names them

    def _pieces(self) -> list[tuple[str, str]]:
        return split(self.template)

    def _words(self) -> tuple[str, str]:
        # A word that starts with the other goes first: "on|onward" would stop at "on".
        return (self.off, self.on) if self.off.startswith(self.on) else (self.on, self.off)

    @property
    def head(self) -> str:
        """The line's text before its first value, as an operator greps for it ("flags")."""
        first = self._pieces()[0]
        text = first[1] if first[0] == "text" else ""
        # Up to the first punctuation that ends a phrase: "Feature flags - A: " → "Feature flags".
        return re.split(r"\s+[-–:]|:", text, maxsplit=1)[0].strip() or text.strip()

    @property
    def regex(self) -> re.Pattern[str]:
        words = "({}|{})".format(*map(re.escape, self._words()))
        return re.compile("".join(re.escape(t) if k == "text" else words for k, t in self._pieces()))

    @property
    def ere(self) -> str:
        """The same line as a POSIX extended regular expression, for awk on the host."""
        words = "({}|{})".format(*map(ere_escape, self._words()))
        return "".join(ere_escape(t) if k == "text" else words for k, t in self._pieces())

    def parse(self, line: str) -> dict[str, bool] | None:
        """The flags a line reports (matched anywhere in it), or None when it is not a flag line."""
        m = self.regex.search(line)
        if not m:
            return None
        return {flag: value == self.on for flag, value in zip(self.order, m.groups(), strict=True)}

    def render(self, values: dict[str, bool]) -> str:
        """The line as the service would write it (for the simulator and tests)."""
        return "".join(t if k == "text" else (self.on if values[t] else self.off) for k, t in self._pieces())


@dataclass(frozen=True)
class PlainLine:
    """A plain log line's layout, e.g. ``[{level}] {logger}: {message}``."""

    template: str

    @property
    def regex(self) -> re.Pattern[str]:
        body = "".join(re.escape(t) if k == "text" else _FIELD_RE[t] for k, t in split(self.template))
        return re.compile(r"^\s*" + body)

    def level(self, line: str) -> str | None:
        m = self.regex.match(line)
        return m.group("level").upper() if m else None


def placeholders(text: str) -> list[tuple[tuple[str, ...], bool]]:
    """Each ``{a|b:q}`` in ``text``: its alternatives and whether it is shell-quoted."""
    return [(tuple(m.group(1).split("|")), bool(m.group(2))) for m in PLACEHOLDER.finditer(text)]


def fill(template: str, values: Mapping[str, Any], quote: Callable[[str], str] | None = None) -> str | None:
    """``template`` with each placeholder replaced by the first of its names that has a value
    (``{name:q}`` through ``quote``); None when one of them has none."""
    missing = False

    def one(m: re.Match[str]) -> str:
        nonlocal missing
        value = next((values[n] for n in m.group(1).split("|") if values.get(n) is not None), None)
        if value is None:
            missing = True
            return ""
        return quote(str(value)) if m.group(2) and quote else str(value)

    out = PLACEHOLDER.sub(one, template)
    return None if missing else out


def fill_json(template: Any, values: Mapping[str, Any]) -> Any:
    """A JSON template filled in: a string that is one placeholder takes the value as it is
    (an integer stays an integer); other strings are filled as text. KeyError names a
    placeholder without a value."""
    if isinstance(template, dict):
        return {k: fill_json(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_json(v, values) for v in template]
    if not isinstance(template, str):
        return template
    whole = PLACEHOLDER.fullmatch(template)
    if whole and not whole.group(2):
        found = next((values[n] for n in whole.group(1).split("|") if values.get(n) is not None), None)
        if found is None:
            raise KeyError(whole.group(1))
        return found
    filled = fill(template, values)
    if filled is None:
        raise KeyError(template)
    return filled


def item_line(lines: list[str], start: int, index: int) -> int | None:
    """The 1-based line where item ``index`` of the array assigned on line ``start`` begins
    (``shape = [`` … one item per line); None when it cannot be told. TOML's strings and
    comments are skipped, so brackets inside them do not count."""
    text = "\n".join(lines[start - 1 :])
    at = text.find("=")
    if at < 0:
        return None
    line, depth, count, expecting, i = start, 0, -1, False, at + 1
    while i < len(text):
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#":
            i = text.find("\n", i) - 1 if "\n" in text[i:] else len(text)
        elif c in "[{" or c in "\"'":
            if depth == 1 and expecting:
                count, expecting = count + 1, False
                if count == index:
                    return line
            if c in "[{":
                depth += 1
                expecting = depth == 1 and c == "["
            else:
                end = _string_end(text, i)
                line += text.count("\n", i, end)
                i = end - 1
        elif c in "]}":
            depth -= 1
            if depth <= 0:
                return None
        elif c == "," and depth == 1:
            expecting = True
        elif not c.isspace() and depth == 1 and expecting:  # a bare item: a number, true, false
            count, expecting = count + 1, False
            if count == index:
                return line
        i += 1
    return None


def _string_end(text: str, i: int) -> int:
    """The index just after the TOML string starting at ``i``."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        return len(text) if end < 0 else end + 3
    j = i + 1
    while j < len(text) and text[j] != quote and text[j] != "\n":
        j += 2 if quote == '"' and text[j] == "\\" else 1
    return j + 1
