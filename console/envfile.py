"""Reading and editing the service's env file without touching anything but flag lines.

python-dotenv's parser yields every binding with the exact text it came from, so
the file is rebuilt from those pieces and only the flag bindings are rewritten.
"""

from __future__ import annotations

import base64
import difflib
import functools
import io
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dotenv.parser import Binding, parse_stream

from console import safe_text

if TYPE_CHECKING:  # the simulator's `ctl` reads env files without the flag model's classes
    from console.flags import FlagSet
    from console.profile.model import FlagRules

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
class Splice:
    """Replace ``expect`` at offset ``at`` with ``put``: one piece of an exact undo.

    ``key``: the flag whose statement it is; None for text appended at the end."""

    at: int
    expect: str
    put: str
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "expect": _piece(self.expect), "put": _piece(self.put), "key": self.key}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Splice:
        return cls(int(data["at"]), _unpiece(data["expect"]), _unpiece(data["put"]), data.get("key"))


def _piece(text: str) -> str | dict[str, str]:
    """Text for the journal; bytes that are not UTF-8 (kept as surrogates) as base64."""
    try:
        text.encode(ENCODING)
    except UnicodeEncodeError:
        return {"base64": base64.b64encode(text.encode(ENCODING, ERRORS)).decode("ascii")}
    return text


def _unpiece(value: Any) -> str:
    if isinstance(value, dict):
        return base64.b64decode(value["base64"]).decode(ENCODING, ERRORS)
    return str(value)


@dataclass(frozen=True)
class Spliced:
    """What ``apply_splices`` made: the text, the splices that turn it back, and what
    could not be put back exactly (the file was changed by someone else in between)."""

    text: str
    redo: tuple[Splice, ...]
    conflicts: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return not self.conflicts


def apply_splices(text: str, splices: Sequence[Splice]) -> Spliced:
    """Apply ``splices`` (e.g. the undo of an edit) to ``text``.

    Each splice is found where it was recorded; if the file changed since, a flag's
    statement is looked for by its key and its text instead, appended lines at the end.
    A statement changed by someone else is still put back as it was (and reported)."""
    found: list[tuple[int, str, Splice]] = []  # (offset, text there now, splice)
    conflicts: list[str] = []
    statements: list[tuple[int, str, str]] | None = None
    used: set[int] = set()
    for s in splices:
        here = text[s.at : s.at + len(s.expect)] == s.expect if 0 <= s.at <= len(text) else False
        if here and (s.expect or (s.key is None and s.at == len(text))):
            found.append((s.at, s.expect, s))
            continue
        if statements is None:
            statements = parse_env(text).statements({k.key for k in splices if k.key} | _appended_keys(splices))
        if s.key is None:
            _find_tail(text, s, statements, found, conflicts, used)
            continue
        same = [(at, st) for at, k, st in statements if k == s.key and st == s.expect and at not in used]
        other = [(at, st) for at, k, st in statements if k == s.key and at not in used]
        if same:
            found.append((same[0][0], same[0][1], s))
            used.add(same[0][0])
        elif other and s.expect:
            at, st = other[0]
            conflicts.append(f"{s.key}: the line was changed since ({st.strip()!r}); put back as {s.put.strip()!r}")
            found.append((at, st, s))
            used.add(at)
        elif s.expect:
            conflicts.append(f"{s.key}: the line is gone; put back at the end as {s.put.strip()!r}")
            found.append((len(text), "", Splice(len(text), "", _line_after(text, s.put), s.key)))
        else:
            conflicts.append(f"{s.key}: a line to put back ({s.put.strip()!r}) had no place; added at the end")
            found.append((len(text), "", Splice(len(text), "", _line_after(text, s.put), s.key)))
    found.sort(key=lambda f: f[0])
    out: list[str] = []
    redo: list[Splice] = []
    pos = delta = 0
    for at, now, s in found:
        if at < pos:  # overlaps the previous one: cannot both be right
            conflicts.append(f"{s.key or 'end of file'}: overlapping edits; left as it is")
            continue
        out += [text[pos:at], s.put]
        redo.append(Splice(at + delta, s.put, now, s.key))
        delta += len(s.put) - len(now)
        pos = at + len(now)
    out.append(text[pos:])
    return Spliced("".join(out), tuple(redo), tuple(conflicts))


def _find_tail(
    text: str,
    s: Splice,
    statements: list[tuple[int, str, str]],
    found: list[tuple[int, str, Splice]],
    conflicts: list[str],
    used: set[int],
) -> None:
    """Text appended at the end: still at the end, or (lines added after it) line by line."""
    if not s.expect:  # an insertion at the end
        found.append((len(text), "", Splice(len(text), "", _line_after(text, s.put), None)))
        return
    if text.endswith(s.expect):
        found.append((len(text) - len(s.expect), s.expect, s))
        return
    for _, key, st in parse_env(s.expect).statements(None):
        match = next((at for at, k, now in statements if k == key and now == st and at not in used), None)
        if match is None:
            conflicts.append(f"{key}: the line the rollback appended ({st.strip()!r}) is gone or changed; left")
            continue
        used.add(match)
        found.append((match, st, Splice(match, st, "", key)))
    if s.expect[:1] in "\r\n":
        conflicts.append("the line break the rollback added at the end of the last line stays")


def _appended_keys(splices: Sequence[Splice]) -> set[str]:
    """The keys of the statements appended by an edit (kept in its tail splices' text)."""
    return {key for s in splices if s.key is None and s.expect for _, key, _ in parse_env(s.expect).statements(None)}


def _line_after(text: str, line: str) -> str:
    """``line`` to be added at the end of ``text``, on a line of its own."""
    if not line:
        return ""
    newline = "\r\n" if "\r\n" in text else "\n"
    sep = newline if text.removeprefix(BOM) and not text.endswith(("\n", "\r")) else ""
    return sep + line + ("" if line.endswith(("\n", "\r")) else newline)


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

    def flags(self, rules: FlagRules) -> FlagSet:
        """The flags as the service reads this file."""
        from console.flags import FlagSet

        return FlagSet.from_environ(rules, self.values)

    def flag_lines(self, rules: FlagRules) -> list[tuple[int, str]]:
        """(line number, text) of every binding of a flag, in file order."""
        envs = {f.env for f in rules.flags}
        return [(line, text) for b, line, text in self._located() if b.key in envs and not b.error]

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

    def with_flags(self, changes: dict[str, bool], rules: FlagRules) -> str:
        """The file's text with each named flag set; every other byte kept."""
        return self.edit(changes, rules)[0]

    def edit(self, changes: dict[str, bool], rules: FlagRules) -> tuple[str, tuple[Splice, ...]]:
        """The text with each flag named by its variable set, written as the profile writes
        it, and the splices that turn it back into this file's text byte for byte (each flag
        statement as it was; appended lines removed)."""
        envs = [f.env for f in rules.flags]
        unknown = set(changes) - set(envs)
        if unknown:
            raise EnvFileError(f"not a flag of this service's profile: {', '.join(sorted(unknown))}")
        pieces: list[str] = [BOM] if self.text.startswith(BOM) else []
        at = len(pieces[0]) if pieces else 0
        undo: list[Splice] = []
        seen: set[str] = set()
        for b in self.bindings:
            s = b.original.string
            if b.key in changes and not b.error:
                new = _rewrite(s, rules.written(changes[b.key], replacing=b.value))
                seen.add(b.key)
                if new != s:
                    pre = _LEADING_SPACE.match(s).end()  # type: ignore[union-attr]  # \s* always matches
                    undo.append(Splice(at + pre, new[pre:], s[pre:], b.key))
                s = new
            pieces.append(s)
            at += len(s)
        text = "".join(pieces)
        missing = [k for k in envs if k in changes and k not in seen]
        if missing:
            newline = "\r\n" if "\r\n" in text else "\n"
            tail = newline if text.removeprefix(BOM) and not text.endswith(("\n", "\r")) else ""
            tail += "".join(f"{key}={rules.written(changes[key])}{newline}" for key in missing)
            undo.append(Splice(len(text), tail, "", None))
            text += tail
        return text, tuple(undo)

    def statements(self, keys: Collection[str] | None) -> list[tuple[int, str, str]]:
        """(offset in the text, key, statement) of every binding of ``keys`` (None: of any
        key); the statement is its text without the blank lines before it, with its line break."""
        out = []
        at = len(BOM) if self.text.startswith(BOM) else 0
        for b in self.bindings:
            s = b.original.string
            if b.key is not None and (keys is None or b.key in keys) and not b.error:
                pre = _LEADING_SPACE.match(s).end()  # type: ignore[union-attr]  # \s* always matches
                out.append((at + pre, b.key, s[pre:]))
            at += len(s)
        return out

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


CACHED_TEXT = 64 * 1024  # env files up to this size have their parse remembered


def parse_env(data: bytes | str, path: str = "<env>") -> EnvFile:
    text = data.decode(ENCODING, ERRORS) if isinstance(data, bytes) else data
    bindings = _bindings(text) if len(text) <= CACHED_TEXT else _parse(text)
    return EnvFile(path=path, text=text, bindings=bindings)


def _parse(text: str) -> tuple[Binding, ...]:
    return tuple(parse_stream(_Reader(text)))


# A run parses each host's file several times (preview, intent, edit, check, probes), and a
# fleet's files are mostly alike: python-dotenv's parser is the console's costliest step
# per host after SSH. Bindings are immutable, so sharing them is safe.
_bindings = functools.lru_cache(maxsize=256)(_parse)


def _diff_lines(text: str) -> list[str]:
    # Lines end at "\n" only, as in the operator's editor (str.splitlines also splits
    # at \r, \f, \x1c, \u2028, ...).
    return _LINE.findall(text)


_STATEMENT = re.compile(r"(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<eq>\s*=)?")
_HIDDEN = "…  (value not shown)"


def _shown_lines(text: str, shown: Collection[str]) -> list[str]:
    """The file's lines as a diff may show them: comments and blank lines as they are; a
    statement of a key in ``shown`` (the flags) with its first line as it is; any other
    statement by its key only; and every further line of a value (a multi-line quoted
    value, a PEM key) hidden whole. One shown line per file line, found by offsets
    (python-dotenv may split a CRLF between two statements, so its pieces do not follow
    line ends)."""
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
            if b.key in shown and not b.error:
                out.append(line)
            elif sm and sm["eq"] and not b.error:
                out.append(f"{line[: statement - start]}{sm['lead']}{sm['key']}{sm['eq']}{_HIDDEN}{end}")
            else:  # a line python-dotenv cannot read may be the middle of someone's secret
                out.append(f"…  (not shown: a line python-dotenv cannot read){end}")
        else:
            out.append(f"…  (value continued, not shown){end}")
    return out


def unified_diff(path: str, old: str, new: str, *, shown: Collection[str] | None = ()) -> str:
    """The edit as a unified diff, safe to show: the values of statements whose keys are not
    in ``shown`` (the flags' variables) are hidden, multi-line values whole; ``shown=None``
    shows every line. Control and bidi characters are shown escaped, never raw."""
    reader = _diff_lines if shown is None else functools.partial(_shown_lines, shown=shown)
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
