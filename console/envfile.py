"""Reading and editing the service's env file without touching anything but flag lines.

python-dotenv's parser yields every binding with the exact text it came from, so
the file is rebuilt from those pieces and only the flag bindings are rewritten.
"""

from __future__ import annotations

import difflib
import io
import re
from dataclasses import dataclass

from dotenv.parser import Binding, parse_stream

from console import safe_text
from console.flags import FLAG_NAMES, FlagSet

ENCODING = "utf-8"
ERRORS = "surrogateescape"  # keeps any byte round-trippable
BOM = "\ufeff"  # python-dotenv drops a leading BOM; it is put back on write

# One flag binding exactly as python-dotenv's parser reads it: blank lines before it,
# `export `, the key (unquoted keys stop at `#`), `=` with blanks on the same line
# only, the value with any comment, the line break.
_ASSIGN = re.compile(
    r"""^(?P<pre>\s*)(?P<export>export[^\S\r\n]+)?(?P<key>'[^']+'|[^=\#\s]+)"""
    r"""(?P<eq>[^\S\r\n]*=[^\S\r\n]*)?(?P<body>.*?)(?P<eol>\r\n|\n|\r)?\Z""",
    re.DOTALL,
)
# Quoted values as python-dotenv reads them: a backslash escapes the next character
# inside both kinds of quotes.
_QUOTED = {
    "'": re.compile(r"'(?:\\.|[^'\\])*'", re.DOTALL),
    '"': re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL),
}
_LEADING_SPACE = re.compile(r"\s*")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


class EnvFileError(ValueError):
    """The env file cannot be edited safely."""


@dataclass(frozen=True)
class EnvProblem:
    """A statement python-dotenv cannot read: the service does not see it."""

    line: int  # 1-based, counting "\n" as editors, grep -n and sed do
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: cannot parse {self.text.strip()[:80]!r}"


# Bytes no text env file holds: NUL and the C0 controls but tab, LF, VT, FF, CR and ESC; DEL.
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


@dataclass(frozen=True)
class NotText:
    """Why a file is not a text env file: the first line holding a byte no text file holds."""

    line: int
    byte: int

    def __str__(self) -> str:
        what = "a NUL byte" if self.byte == 0 else f"the control byte 0x{self.byte:02x}"
        return f"line {self.line} holds {what}: not a text env file (binary or damaged?)"


def not_text(data: bytes | str) -> NotText | None:
    """The first line that makes ``data`` something other than a text env file, if any.

    Such a file is never edited: python-dotenv reads a NUL-filled file as no flags at all
    (all on), and a rewrite would keep the damage while claiming a rollback.
    Bytes that are not UTF-8 are text here (a Latin-1 comment is an env file's right).
    """
    raw = data.encode(ENCODING, ERRORS) if isinstance(data, str) else data
    m = _NOT_TEXT.search(raw)
    if m is None:
        return None
    return NotText(raw.count(b"\n", 0, m.start()) + 1, m.group()[0])


@dataclass(frozen=True)
class EnvFile:
    path: str
    text: str
    bindings: tuple[Binding, ...]

    @property
    def values(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for b in self.bindings:
            if b.key is not None and not b.error:
                out[b.key] = b.value
        return out

    @property
    def not_text(self) -> NotText | None:
        """Set when the file holds bytes no text file holds (see ``not_text()``)."""
        return not_text(self.text)

    @property
    def problems(self) -> list[EnvProblem]:
        return [EnvProblem(line, text) for b, line, text in self._located() if b.error]

    def flags(self) -> FlagSet:
        return FlagSet.from_mapping(self.values)

    def flag_lines(self) -> list[tuple[int, str]]:
        """(line number, text) of every binding of a flag, in file order."""
        return [(line, text) for b, line, text in self._located() if b.key in FLAG_NAMES and not b.error]

    def _located(self) -> list[tuple[Binding, int, str]]:
        """Each binding with the line its statement starts on and the statement's text.

        A binding's text begins with the blank lines before it, and python-dotenv's own
        line numbers drift after a malformed line in a CRLF file, so lines are counted
        here from the text itself.
        """
        out = []
        line = 1
        for b in self.bindings:
            s = b.original.string
            blank = _LEADING_SPACE.match(s).end()  # type: ignore[union-attr]  # \s* always matches
            start = s.rfind("\n", 0, blank) + 1  # the statement's own line, indent included
            out.append((b, line + s.count("\n", 0, start), s[start:].rstrip("\r\n")))
            line += s.count("\n")
        return out

    def with_flags(self, changes: dict[str, bool]) -> str:
        """The file's text with each named flag set; every other byte kept."""
        unknown = set(changes) - set(FLAG_NAMES)
        if unknown:
            raise EnvFileError(f"not a Phase 4 flag: {', '.join(sorted(unknown))}")
        pieces: list[str] = [BOM] if self.text.startswith(BOM) else []
        seen: set[str] = set()
        for b in self.bindings:
            if b.key in changes and not b.error:
                pieces.append(_rewrite(b.original.string, "true" if changes[b.key] else "false"))
                seen.add(b.key)
            else:
                pieces.append(b.original.string)
        text = "".join(pieces)
        missing = [k for k in FLAG_NAMES if k in changes and k not in seen]
        if missing:
            newline = "\r\n" if "\r\n" in text else "\n"
            if text.removeprefix(BOM) and not text.endswith(("\n", "\r")):
                text += newline
            for key in missing:
                text += f"{key}={'true' if changes[key] else 'false'}{newline}"
        return text

    def encoded(self, text: str | None = None) -> bytes:
        return (self.text if text is None else text).encode(ENCODING, ERRORS)


def _rewrite(original: str, value: str) -> str:
    m = _ASSIGN.match(original)
    if not m:  # dotenv accepted it, so this does not happen; fail loudly rather than guess
        raise EnvFileError(f"cannot rewrite {original.strip()!r}")
    eq, body = m["eq"], m["body"]
    if eq is None:
        # `KEY` alone or `KEY # comment`: a key without a value; give it one.
        eq, new_body = "=", value + (" " if body.startswith("#") else "") + body
    elif body[:1] in _QUOTED:
        quoted = _QUOTED[body[0]].match(body)
        if not quoted:  # dotenv read a quoted value here, so this does not happen
            raise EnvFileError(f"cannot rewrite {original.strip()!r}")
        new_body = f"{body[0]}{value}{body[0]}{body[quoted.end() :]}"
    elif body.startswith("#") and eq != eq.rstrip():
        # `KEY= # comment`: an empty value, then a comment that stays.
        new_body = f"{value} {body}"
    else:
        cm = re.search(r"\s+#", body)
        rest = body[cm.start() :] if cm else ""
        stripped = body[: cm.start()] if cm else body
        trailing = stripped[len(stripped.rstrip()) :]
        new_body = value + trailing + rest
    return f"{m['pre']}{m['export'] or ''}{m['key']}{eq}{new_body}{m['eol'] or ''}"


class _Reader(io.TextIOBase):
    def __init__(self, text: str) -> None:
        self._text = text

    def read(self, size: int | None = -1) -> str:  # parse_stream reads it all at once
        return self._text


def parse_env(data: bytes | str, path: str = "<env>") -> EnvFile:
    text = data.decode(ENCODING, ERRORS) if isinstance(data, bytes) else data
    bindings = tuple(parse_stream(_Reader(text)))
    return EnvFile(path=path, text=text, bindings=bindings)


def _diff_lines(text: str) -> list[str]:
    # Lines end at "\n" only, as in the operator's editor (str.splitlines also splits
    # at \r, \f, \x1c, \u2028, ...).
    return _LINE.findall(text)


_STATEMENT = re.compile(r"(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<eq>\s*=)?")
_HIDDEN = "…  (value not shown)"


def _shown_lines(text: str) -> list[str]:
    """The file's lines as a diff may show them: comments and blank lines as they are; a
    flag statement's first line as it is; any other statement by its key only; and every
    further line of a value (a multi-line quoted value, a PEM key) hidden whole. One shown
    line per file line, found by offsets (python-dotenv may split a CRLF between two
    statements, so its pieces do not follow line ends)."""
    spans: list[tuple[int, int, Binding]] = []  # (start, statement start, binding)
    offset = 0
    for b in parse_env(text).bindings:
        s = b.original.string
        spans.append((offset, offset + _LEADING_SPACE.match(s).end(), b))  # type: ignore[union-attr]
        offset += len(s)
    out: list[str] = []
    i = 0
    for m in _LINE.finditer(text):
        line, start = m.group(), m.start()
        while i + 1 < len(spans) and spans[i + 1][0] <= start:
            i += 1
        if not spans:
            out.append(line)
            continue
        _, statement, b = spans[i]
        end = "\n" if line.endswith("\n") else ""
        if m.end() <= statement or (b.key is None and not b.error):
            out.append(line)  # blank lines before a statement, comments
        elif start <= statement:
            sm = _STATEMENT.match(text, statement, m.end())
            if b.key in FLAG_NAMES and not b.error:
                out.append(line)
            elif sm and sm["eq"] and not b.error:
                out.append(f"{line[: statement - start]}{sm['lead']}{sm['key']}{sm['eq']}{_HIDDEN}{end}")
            else:  # a line python-dotenv cannot read may be the middle of someone's secret
                out.append(f"…  (not shown: a line python-dotenv cannot read){end}")
        else:
            out.append(f"…  (value continued, not shown){end}")
    return out


def unified_diff(path: str, old: str, new: str, *, mask: bool = True) -> str:
    """The edit as a unified diff, safe to show. ``mask``: hide the values of the non-flag
    statements around it (multi-line values whole). Control and bidi characters are shown
    escaped, never raw."""
    reader = _shown_lines if mask else _diff_lines
    out = []
    for line in difflib.unified_diff(
        reader(old),
        reader(new),
        fromfile=f"{path} (now)",
        tofile=f"{path} (after)",
    ):
        # A last line without "\n" is shown the way diff(1) shows it, not run into the next.
        line = line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        out.append(safe_text.terminal(line[:-1]) + "\n" if line.endswith("\n") else safe_text.terminal(line))
    return "".join(out)
