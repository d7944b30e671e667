"""JSON from the service, parsed with a depth limit and finite numbers only.

``json.loads`` recurses once per nesting level (a deep enough body raises RecursionError)
and accepts NaN, Infinity and 1e999 (which cannot be written back as JSON). Here every
such body is a ``BodyError`` saying what is wrong, never an exception from inside json.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64  # the API's answers nest 4 deep; anything near this is not the API

# Strings are skipped whole, so brackets inside them do not count.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class BodyError(ValueError):
    """The body is not JSON we accept; the message (``is not JSON (…)``, ``holds NaN…``) says why."""


def depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects (a cheap scan, no recursion)."""
    level = deepest = 0
    for m in _TOKENS.finditer(raw):
        c = m.group()
        if c in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        elif c in (b"]", b"}"):
            level -= 1
    return deepest


def _constant(name: str) -> Any:
    raise BodyError(f"holds {name}, which JSON does not allow")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"holds the number {text[:40]}, too large to be finite")
    return value


def loads(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed body; BodyError for anything that is not plain, finite, shallow JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"is not UTF-8 (byte {exc.start})") from None
    found = depth(raw)
    if found > max_depth:
        raise BodyError(f"is nested {found} levels deep (more than {max_depth})")
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_finite)
    except BodyError:
        raise
    except RecursionError:  # the scan above should make this impossible; never past here
        raise BodyError(f"is nested more than {max_depth} levels deep") from None
    except json.JSONDecodeError as exc:
        raise BodyError(f"is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:
        if "digits" in str(exc):  # Python refuses integers of more than 4300 digits
            raise BodyError("holds an integer with too many digits") from None
        raise BodyError("is not JSON (" + str(exc).split("\n")[0][:120] + ")") from None


def finite_json(value: Any) -> Any:
    """A copy of ``value`` fit for ``json.dump(allow_nan=False)``: NaN and ±inf become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value
