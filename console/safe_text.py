"""The one sanitizer: text from outside (hosts, logs, env files, the journal, arguments)
made safe for the channel it is shown on.

- ``terminal`` (alias ``clean``): CLI text. Control characters (ESC, BEL, CR, NUL, the C1
  range with its one-byte CSI), bidi overrides and invisible format characters are shown
  as ``\\xNN`` / ``\\uNNNN``; newlines and tabs stay.
- ``one_line``: ``terminal`` with line breaks shown as `` ⏎ ``, for table cells.
- ``markup``: ``terminal`` for a Textual/Rich markup string (every "[" escaped).
- ``markdown``: a whole markdown document (history, incident report): ``terminal``, and
  outside code fences HTML is inert (``<img onerror>`` shows as text).
- ``json_text`` / ``finite``: a JSON document that is valid (no NaN, no lone surrogates)
  and holds no raw control or bidi character (they are written as ``\\uNNNN``).

Secrets are the redactor's business (console.journal.redact); callers that show text from
a host use both: ``terminal(redactor.text(line))``.
"""

from __future__ import annotations

import math
import re
from typing import Any

# C0 but tab and newline, DEL, the C1 range (0x9b is a one-byte CSI on some terminals),
# bidi embeddings/overrides/isolates and marks, zero-width and line/paragraph separators,
# the BOM, interlinear annotations, and lone surrogates (undecodable bytes).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_NEWLINES = re.compile(r"\r\n|\r|\n")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
# What can open raw HTML in CommonMark: "<" before a tag name, "/", "!" or "?". A "<" before
# a space or digit ("< 1 min") stays as typed.
_HTML = re.compile(r"<(?=[A-Za-z/!?])")
_OWN_BREAK = "<br>"  # the one tag the project's own markdown writes (line breaks in a cell)


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def terminal(text: str) -> str:
    """Text safe to print on a terminal: nothing in it can move the cursor, change colours,
    set the window title, reorder what follows or hide itself. Newlines and tabs stay."""
    return _UNSAFE.sub(_visible, text)


def clean(text: str) -> str:
    """``terminal``, under the name existing callers use."""
    return terminal(text)


def one_line(text: str, joiner: str = " ⏎ ") -> str:
    """``terminal``, with line breaks shown as ``joiner``: a value that must stay on its line."""
    return terminal(_NEWLINES.sub(joiner, text))


def markup(text: object) -> str:
    """Text from outside, safe inside Textual or Rich markup: every "[" escaped (the markup
    escape functions leave "[INFO]" and "[database]" alone, which the parser then eats)."""
    out = terminal(str(text)).replace("[", "\\[")
    # A trailing backslash would escape the closing tag the caller puts after it.
    return out + " " if out.endswith("\\") else out


def _html(text: str) -> str:
    parts = text.split(_OWN_BREAK)
    return _OWN_BREAK.join(_HTML.sub("&lt;", p) for p in parts)


def markdown(document: str) -> str:
    """A markdown document safe to print and to render: ``terminal`` everywhere, and
    outside code fences a "<" that could open a tag is written ``&lt;`` (the project's own
    ``<br>`` kept), so a reason or a log line cannot inject HTML into a rendered report."""
    out = []
    fence: str | None = None
    for line in document.split("\n"):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append(terminal(line))
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip(" `~"):
                fence = None
            out.append(terminal(line))
            continue
        out.append(terminal(_html(line)))
    return "\n".join(out)


def finite(value: Any) -> Any:
    """A copy of a JSON-able value with NaN and ±inf as None (JSON has no such numbers)
    and strings made encodable (an undecodable byte becomes U+FFFD)."""
    stack: list[tuple[Any, Any, Any]] = []
    root: list[Any] = [None]
    stack.append((value, root, 0))
    while stack:  # iterative: a deeply nested value must not exhaust the stack
        item, parent, key = stack.pop()
        if isinstance(item, float):
            parent[key] = item if math.isfinite(item) else None
        elif isinstance(item, str):
            parent[key] = _encodable(item)
        elif isinstance(item, dict):
            copy: dict[Any, Any] = {}
            parent[key] = copy
            for k, v in item.items():
                name = _encodable(k) if isinstance(k, str) else k
                copy[name] = None
                stack.append((v, copy, name))
        elif isinstance(item, list | tuple):
            seq: list[Any] = [None] * len(item)
            parent[key] = seq
            for i, v in enumerate(item):
                stack.append((v, seq, i))
        else:
            parent[key] = item
    return root[0]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """A lone surrogate (an undecodable byte, or a "\\ud800" escape in JSON read from
    outside) cannot be written as UTF-8: it becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def json_text(serialized: str) -> str:
    """A JSON document's text with every raw control, bidi or format character written as
    a ``\\uNNNN`` escape: the same JSON value, harmless on a terminal. (Outside strings
    JSON holds only ASCII punctuation, so only string contents change.)"""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", serialized)


_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d+[.)])\s")


def reflow(text: str) -> str:
    """Prose from a TOML multi-line string with its hard line breaks joined, so a screen wraps
    it at its own width (broken at the file's, it read as ragged lines): blank lines between
    paragraphs and list items ("- ", "1. ") keep their own lines."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and not _LIST_ITEM.match(line):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)
