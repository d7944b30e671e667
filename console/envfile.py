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

from console.flags import FLAG_NAMES, FlagSet

ENCODING = "utf-8"
ERRORS = "surrogateescape"  # keeps any byte round-trippable

_ASSIGN = re.compile(
    r"""^(?P<pre>\s*)(?P<export>export\s+)?(?P<key>[^=\s]+)(?P<eq>\s*=\s*)?(?P<body>.*?)(?P<eol>\r?\n)?\Z""",
    re.DOTALL,
)


class EnvFileError(ValueError):
    """The env file cannot be edited safely."""


@dataclass(frozen=True)
class EnvProblem:
    line: int
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: cannot parse {self.text.strip()[:80]!r}"


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
    def problems(self) -> list[EnvProblem]:
        return [EnvProblem(b.original.line, b.original.string) for b in self.bindings if b.error]

    def flags(self) -> FlagSet:
        return FlagSet.from_mapping(self.values)

    def flag_lines(self) -> list[tuple[int, str]]:
        """(line number, text) of every binding of a flag, in file order."""
        out = []
        for b in self.bindings:
            if b.key in FLAG_NAMES:
                offset = len(b.original.string) - len(b.original.string.lstrip("\r\n"))
                line = b.original.line + b.original.string[:offset].count("\n")
                out.append((line, b.original.string.strip("\r\n")))
        return out

    def with_flags(self, changes: dict[str, bool]) -> str:
        """The file's text with each named flag set; every other byte kept."""
        unknown = set(changes) - set(FLAG_NAMES)
        if unknown:
            raise EnvFileError(f"not a Phase 4 flag: {', '.join(sorted(unknown))}")
        pieces: list[str] = []
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
            if text and not text.endswith("\n"):
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
    body = m["body"]
    if body[:1] in ("'", '"'):
        quote = body[0]
        end = _closing_quote(body, quote)
        new_body = f"{quote}{value}{quote}{body[end + 1 :]}" if end > 0 else f"{quote}{value}{quote}"
    else:
        cm = re.search(r"\s+#", body)
        rest = body[cm.start() :] if cm else ""
        stripped = body[: cm.start()] if cm else body
        trailing = stripped[len(stripped.rstrip()) :]
        new_body = value + trailing + rest
    eq = m["eq"] or "="
    return f"{m['pre']}{m['export'] or ''}{m['key']}{eq}{new_body}{m['eol'] or ''}"


def _closing_quote(body: str, quote: str) -> int:
    i = 1
    while i < len(body):
        if body[i] == "\\" and quote == '"':
            i += 2
            continue
        if body[i] == quote:
            return i
        i += 1
    return -1


class _Reader(io.TextIOBase):
    def __init__(self, text: str) -> None:
        self._text = text

    def read(self, size: int | None = -1) -> str:  # parse_stream reads it all at once
        return self._text


def parse_env(data: bytes | str, path: str = "<env>") -> EnvFile:
    text = data.decode(ENCODING, ERRORS) if isinstance(data, bytes) else data
    bindings = tuple(parse_stream(_Reader(text)))
    return EnvFile(path=path, text=text, bindings=bindings)


def unified_diff(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (now)",
            tofile=f"{path} (after)",
        )
    )
