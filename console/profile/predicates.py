"""A small, safe language for asking a JSON answer questions: no eval, no regular expressions.

A predicate is a TOML inline table. A test names a path and one or more tests, all of
which must hold; ``all``, ``any`` and ``not`` combine predicates:

    { path = "data.status", equals = "failed" }
    { path = "data.total_posts_analyzed", type = "integer", at_least = 0 }
    { any = [ { path = "data.best_day_hour_combinations", non_empty = true },
              { path = "data.content_type_recommendations", non_empty = true } ] }
    { not = { path = "success", equals = false } }

A path is names joined by dots, with ``[N]`` for an item of a list (``data.best_times[0].hour``);
``$`` is the whole answer. As in jq, a path that leads nowhere reads as null: only
``exists`` tells a missing key from a null one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.config.reader import _did_you_mean, _shown
from console.profile.vocabulary import JSON_TYPES

if TYPE_CHECKING:
    from console.config.load import _Loader
    from console.config.locate import Path as KeyPath

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_PATH = re.compile(rf"^(?:\$|(?:\$\.)?{_NAME}(?:\[\d+\])*(?:\.{_NAME}(?:\[\d+\])*)*)$")
_STEP = re.compile(rf"({_NAME})|\[(\d+)\]")
MAX_DEPTH = 8  # all/any/not nesting: a profile needing more is a profile to rewrite

# test → what its argument must be
UNARY = ("exists", "is_null", "non_empty")
SCALAR = ("equals", "not_equals")
NUMERIC = ("above", "below", "at_least", "at_most")
TESTS = (*UNARY, *SCALAR, "one_of", "type", *NUMERIC)
COMBINATORS = ("all", "any", "not")
_MISSING = object()


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[str | int, ...]

    def read(self, doc: Any) -> Any:
        """The value at this path, or _MISSING."""
        value = doc
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return _MISSING
            elif not isinstance(value, dict) or step not in value:
                return _MISSING
            value = value[step]
        return value

    def value(self, doc: Any) -> Any:
        """The value at this path; None when it leads nowhere."""
        found = self.read(doc)
        return None if found is _MISSING else found


def parse_path(text: str) -> JsonPath | None:
    """A path, or None when ``text`` is not one."""
    if not _PATH.match(text):
        return None
    body = text[2:] if text.startswith("$.") else "" if text == "$" else text
    steps = tuple(m.group(1) if m.group(1) else int(m.group(2)) for m in _STEP.finditer(body))
    return JsonPath(text, steps)


PATH_HINT = "write names joined by dots, like data.best_times (an item of a list: data.best_times[0]; all: $)"


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, as a profile names it."""
    if value is None or value is _MISSING:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def seen(value: Any) -> str:
    """A JSON value as an operator reads it in a message."""
    if value is _MISSING:
        return "missing"
    kind = json_type(value)
    if kind == "null":
        return "null"
    if kind in ("array", "object"):
        return f"an empty {kind}" if not value else (f"an array of {len(value)}" if kind == "array" else "an object")
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({_shown(value)[:40]})"


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Predicate:
    op: str  # "test", "all", "any", "not"
    items: tuple[Predicate, ...] = ()
    path: JsonPath | None = None
    test: str | None = None
    arg: Any = None

    def holds(self, doc: Any) -> bool:
        return self.explain(doc) is None

    def explain(self, doc: Any) -> str | None:
        """None when the predicate holds; else why not, in words."""
        if self.op == "all":
            for item in self.items:
                why = item.explain(doc)
                if why:
                    return why
            return None
        if self.op == "any":
            reasons = [item.explain(doc) for item in self.items]
            if any(r is None for r in reasons):
                return None
            return "none of: " + "; ".join(r for r in reasons if r)
        if self.op == "not":
            return None if self.items[0].explain(doc) else f"expected not: {self.items[0].describe()}"
        return self._leaf(doc)

    def _leaf(self, doc: Any) -> str | None:
        assert self.path is not None and self.test is not None
        found = self.path.read(doc)
        value = None if found is _MISSING else found
        where, arg, test = f"`{self.path.text}`", self.arg, self.test
        if test == "exists":
            ok = (found is not _MISSING) == arg
            return None if ok else f"{where} is {'missing' if arg else 'present'}"
        if test == "is_null":
            return None if (value is None) == arg else f"{where} is {seen(found)}{', not null' if arg else ''}"
        if test == "non_empty":
            full = isinstance(value, list | dict | str) and bool(value)
            return None if full == arg else f"{where} is {seen(found)}, {'not' if arg else 'expected'} empty"
        if test == "equals":
            return None if _same(value, arg) else f"{where} is {seen(found)}, not {_shown(arg)}"
        if test == "not_equals":
            return None if not _same(value, arg) else f"{where} is {_shown(arg)}"
        if test == "one_of":
            ok = any(_same(value, a) for a in arg)
            return None if ok else f"{where} is {seen(found)}, not one of {', '.join(_shown(a) for a in arg)}"
        if test == "type":
            kind = json_type(value)
            ok = kind in arg or (kind == "integer" and "number" in arg)
            return None if ok else f"{where} is {seen(found)}, not {' or '.join(arg)}"
        if not _number(value):
            return f"{where} is {seen(found)}, not a number"
        ok = {
            "above": lambda: value > arg,
            "below": lambda: value < arg,
            "at_least": lambda: value >= arg,
            "at_most": lambda: value <= arg,
        }[test]()
        return None if ok else f"{where} is {_shown(value)}, not {test.replace('_', ' ')} {arg:g}"

    def describe(self) -> str:
        if self.op == "not":
            return f"not ({self.items[0].describe()})"
        if self.op in ("all", "any"):
            return f" {'and' if self.op == 'all' else 'or'} ".join(i.describe() for i in self.items)
        return f"{self.path.text if self.path else '?'} {self.test} {_shown(self.arg)}"

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the predicate reads."""
        if self.path is not None:
            return (self.path.text,)
        return tuple(p for item in self.items for p in item.paths)


# --- reading predicates from the profile, every problem reported -------------------------


def read(loader: _Loader, value: Any, where: KeyPath, depth: int = 0) -> Predicate | None:
    """The predicate written at ``where``; None (with problems reported) when it is wrong."""
    if not isinstance(value, dict):
        loader.problem(where, f'expected a predicate like {{ path = "data.status", equals = "failed" }}, got {value!r}')
        return None
    if depth > MAX_DEPTH:
        loader.problem(where, f"predicates nest more than {MAX_DEPTH} deep")
        return None
    combinators = [k for k in value if k in COMBINATORS]
    if combinators:
        return _combinator(loader, value, where, combinators, depth)
    if "path" not in value:
        unknown = [k for k in value if k not in TESTS]
        if unknown:
            _unknown_test(loader, where, unknown[0])
        else:
            loader.problem(where, 'a test needs a path (path = "data.status"), or use all/any/not')
        return None
    ok = True
    path = None
    if not isinstance(value["path"], str):
        loader.problem((*where, "path"), f"expected a string, got {value['path']!r}")
        ok = False
    else:
        path = parse_path(value["path"])
        if path is None:
            loader.problem((*where, "path"), f"{value['path']!r} is not a path: {PATH_HINT}")
            ok = False
    tests = []
    for key, arg in value.items():
        if key == "path":
            continue
        if key not in TESTS:
            _unknown_test(loader, where, key)
            ok = False
            continue
        message = _argument_problem(key, arg)
        if message:
            loader.problem((*where, key), message)
            ok = False
            continue
        if key == "type":
            arg = (arg,) if isinstance(arg, str) else tuple(arg)
        elif key == "one_of":
            arg = tuple(arg)
        tests.append(Predicate("test", path=path, test=key, arg=arg))
    if ok and not tests:
        loader.problem(where, f"no test for {value['path']!r}: add one of {', '.join(TESTS)}")
        return None
    if not ok:
        return None
    return tests[0] if len(tests) == 1 else Predicate("all", tuple(tests))


def read_list(loader: _Loader, value: Any, where: KeyPath) -> tuple[Predicate, ...] | None:
    """A list of predicates (all must hold); None when any is wrong."""
    if not isinstance(value, list):
        loader.problem(where, "expected a list of predicates: [ { path = …, type = … }, … ]")
        return None
    out = [read(loader, item, (*where, i)) for i, item in enumerate(value)]
    return None if any(p is None for p in out) else tuple(p for p in out if p is not None)


def _combinator(
    loader: _Loader, value: dict[str, Any], where: KeyPath, combinators: list[str], depth: int
) -> Predicate | None:
    op = combinators[0]
    extra = [k for k in value if k != op]
    if extra:
        loader.problem(
            (*where, extra[0]),
            f"`{op}` stands alone in its table: put {extra[0]!r} in a predicate inside it"
            if extra[0] in (*COMBINATORS, "path", *TESTS)
            else f"unknown key in an `{op}` predicate{_did_you_mean(extra[0], COMBINATORS)}",
        )
        return None
    arg = value[op]
    if op == "not":
        inner = read(loader, arg, (*where, op), depth + 1)
        return None if inner is None else Predicate("not", (inner,))
    if not isinstance(arg, list) or not arg:
        loader.problem((*where, op), f"`{op}` takes a non-empty list of predicates: {op} = [ {{ … }}, {{ … }} ]")
        return None
    items = [read(loader, item, (*where, op, i), depth + 1) for i, item in enumerate(arg)]
    if any(p is None for p in items):
        return None
    return Predicate(op, tuple(p for p in items if p is not None))


def _unknown_test(loader: _Loader, where: KeyPath, key: str) -> None:
    loader.problem(
        (*where, key),
        f"unknown predicate test{_did_you_mean(key, (*TESTS, *COMBINATORS, 'path'))}; "
        f"tests: {', '.join(TESTS)}; or combine with all, any, not",
    )


def _argument_problem(test: str, arg: Any) -> str | None:
    if isinstance(arg, float) and not math.isfinite(arg):
        return f"`{test}` takes a finite number, got {arg}"
    if test in UNARY:
        return None if isinstance(arg, bool) else f"`{test}` takes true or false, got {_shown(arg)}"
    if test in SCALAR:
        if isinstance(arg, str | bool | int | float):
            return None
        return f"`{test}` takes a string, number or true/false, got {_shown(arg)}"
    if test == "one_of":
        if isinstance(arg, list) and arg and all(isinstance(a, str | bool | int | float) for a in arg):
            bad = [a for a in arg if isinstance(a, float) and not math.isfinite(a)]
            return f"`one_of` takes finite numbers, got {bad[0]}" if bad else None
        return f"`one_of` takes a non-empty list of strings, numbers or true/false, got {_shown(arg)}"
    if test == "type":
        names = [arg] if isinstance(arg, str) else arg
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            return f'`type` takes a JSON type or a list of them, like "array" or ["array", "null"], got {_shown(arg)}'
        for n in names:
            if n not in JSON_TYPES:
                return f"{n!r} is not a JSON type{_did_you_mean(n, JSON_TYPES)}; types: {', '.join(JSON_TYPES)}"
        return None
    if _number(arg):
        return None
    return f"`{test}` takes a number, got {_shown(arg)}"
