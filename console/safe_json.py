"""JSON from outside, parsed with limits: a size, a nesting depth, finite numbers only.

``loads`` is total: whatever the bytes, it returns a value or raises ``JSONLimitError``
(a ValueError) whose message says what was wrong. Nothing deeper than ``max_depth``
comes back, so code that walks the value recursively cannot run out of stack.
"""

from __future__ import annotations

import json
import math
from typing import Any

DEFAULT_MAX_DEPTH = 64


class JSONLimitError(ValueError):
    """Not JSON, or JSON beyond a limit; the message says which. ``cut_short``: the text
    is the start of a JSON value that ends too early (what a write cut off leaves)."""

    def __init__(self, message: str, *, cut_short: bool = False) -> None:
        super().__init__(message)
        self.cut_short = cut_short


def _no_constant(name: str) -> Any:
    raise JSONLimitError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise JSONLimitError(f"number {shown} is out of range")
    return value


def depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


def loads(data: bytes | str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """One JSON value from ``data``; JSONLimitError if it is not JSON or goes past a limit."""
    if len(data) > max_bytes:
        raise JSONLimitError(f"{len(data)} bytes, more than the {max_bytes} allowed")
    # Cheap bound first: fewer brackets than the limit cannot nest deeper than it.
    brackets = data.count(b"[" if isinstance(data, bytes) else "[") + data.count(
        b"{" if isinstance(data, bytes) else "{"
    )
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except JSONLimitError:
        raise
    except RecursionError:
        raise JSONLimitError(f"nested more than {max_depth} levels deep") from None
    except UnicodeDecodeError:
        raise JSONLimitError("not UTF-8") from None
    except json.JSONDecodeError as exc:
        # Text cut off mid-value fails at its very end, or inside a string never closed.
        cut_short = exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated string")
        raise JSONLimitError(f"bad JSON: {exc.msg} at column {exc.colno}", cut_short=cut_short) from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an integer of 5000 digits
        raise JSONLimitError(f"bad JSON: {str(exc)[:120]}") from None
    if brackets > max_depth and depth(value) > max_depth:
        raise JSONLimitError(f"nested more than {max_depth} levels deep")
    return value
