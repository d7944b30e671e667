"""JSON answers made from a profile's predicates, for the simulated service of any profile.

The profile says what an answer must be (envelope, shape, data present), what each mode
looks like, what a failure looks like and what a healthy endpoint says; the simulator
says nothing of its own. A document is built rule by rule: each leaf test picks the first
value, from the value already there, those its test suggests and a few plain JSON values,
that makes the rule hold without breaking one already made to hold. A rule that cannot be
made to hold so raises GenerationError naming the profile key, never a traceback.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from console.profile.model import AnswerSpec, Endpoint, Profile
from console.profile.predicates import JsonPath, Predicate

MAX_FLAG_COMBINATIONS = 256  # check_profile tries every combination of up to 8 flags
_DELETE = object()  # a candidate that removes the key
_SAMPLE_LIST = [{"id": 1}, {"id": 2}, {"id": 3}]
_PLAIN: tuple[Any, ...] = (None, True, False, 0, 1, 1.5, "text", [], {}, _SAMPLE_LIST, {"id": 1}, _DELETE)
_OF_TYPE: dict[str, Any] = {
    "object": {},
    "array": [],
    "string": "text",
    "integer": 0,
    "number": 0.5,
    "boolean": False,
    "null": None,
}


class GenerationError(ValueError):
    """The profile's predicates cannot be satisfied by the generator; the message names the key."""


@dataclass(frozen=True)
class Rule:
    key: str  # where the profile says it: "probe.answer.shape[2]"
    predicate: Predicate
    want: bool = True  # False: the predicate must not hold


# --- documents -----------------------------------------------------------------------------


def set_path(doc: Any, path: JsonPath, value: Any) -> Any:
    """``doc`` with ``value`` at ``path`` (containers made on the way); the new root."""
    if not path.steps:
        return {} if value is _DELETE else copy.deepcopy(value)
    root = doc if isinstance(doc, dict if isinstance(path.steps[0], str) else list) else _container(path.steps[0])
    node = root
    for step, following in zip(path.steps, path.steps[1:], strict=False):
        child = _get(node, step)
        if not isinstance(child, dict if isinstance(following, str) else list):
            child = _container(following)
            _put(node, step, child)
        node = child
    last = path.steps[-1]
    if value is _DELETE:
        if isinstance(last, str):
            node.pop(last, None)
        elif last < len(node):
            node[last] = None  # a list keeps its length: a later item keeps its index
    else:
        _put(node, last, copy.deepcopy(value))
    return root


def _container(step: str | int) -> Any:
    return {} if isinstance(step, str) else []


def _get(node: Any, step: str | int) -> Any:
    if isinstance(step, str):
        return node.get(step)
    return node[step] if step < len(node) else None


def _put(node: Any, step: str | int, value: Any) -> None:
    if isinstance(step, str):
        node[step] = value
        return
    node.extend([None] * (step + 1 - len(node)))
    node[step] = value


# --- making predicates hold (or not) -----------------------------------------------------


def _suggested(test: str, arg: Any, want: bool) -> list[Any]:
    """Values the test itself points at, for the wanted outcome."""
    if test in ("equals", "not_equals"):
        return [arg] if want == (test == "equals") else [_other(arg)]
    if test == "one_of":
        return list(arg) if want else [_other(arg[0]), "other"]
    if test == "type":
        names = arg if want else [t for t in _OF_TYPE if t not in arg and not (t == "integer" and "number" in arg)]
        return [_OF_TYPE[t] for t in names if t in _OF_TYPE]
    if test == "non_empty":
        return [_SAMPLE_LIST, {"id": 1}, "text"] if want else [[], {}, "", None]
    if test == "is_null":
        return [None] if want else ["text", 0, {}, []]
    if test == "exists":
        return [None, "text"] if want else [_DELETE]
    low, high = math.floor(arg), math.ceil(arg)
    numbers = {
        "above": [low + 1, arg + 1],
        "below": [high - 1, arg - 1],
        "at_least": [high, arg],
        "at_most": [low, arg],
    }[test]
    return numbers if want else [{"above": high - 1, "below": low + 1, "at_least": low - 1, "at_most": high + 1}[test]]


def _other(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return "down" if isinstance(value, str) and value != "down" else None


def _hints(pred: Predicate, want: bool, path: str) -> Iterator[Any]:
    """Values that the rules already kept suggest for ``path`` (a one_of's other choices)."""
    if pred.op == "not":
        yield from _hints(pred.items[0], not want, path)
    elif pred.op in ("all", "any"):
        for item in pred.items:
            yield from _hints(item, want, path)
    elif pred.path is not None and pred.path.text == path and pred.test is not None:
        yield from _suggested(pred.test, pred.arg, want)


def _candidates(current: Any, pred: Predicate, want: bool, kept: Sequence[tuple[Predicate, bool]]) -> Iterator[Any]:
    assert pred.path is not None and pred.test is not None
    yield current
    yield from _suggested(pred.test, pred.arg, want)
    for p, w in kept:
        yield from _hints(p, w, pred.path.text)
    yield from _PLAIN


def _fits(doc: Any, kept: Sequence[tuple[Predicate, bool]]) -> bool:
    return all(p.holds(doc) == w for p, w in kept)


def make(doc: Any, pred: Predicate, want: bool, kept: Sequence[tuple[Predicate, bool]]) -> Any | None:
    """``doc`` changed so that ``pred`` holds (``want``) and every kept rule still does; None when it cannot."""
    if pred.holds(doc) == want:
        return doc
    if pred.op == "not":
        return make(doc, pred.items[0], not want, kept)
    if pred.op in ("all", "any"):
        if (pred.op == "all") == want:  # every item
            done = list(kept)
            for item in pred.items:
                found = make(doc, item, want, done)
                if found is None:
                    return None
                doc = found
                done.append((item, want))
            return doc if pred.holds(doc) == want else None
        for item in pred.items:  # any one item
            found = make(copy.deepcopy(doc), item, want, kept)
            if found is not None and pred.holds(found) == want:
                return found
        return None
    assert pred.path is not None and pred.test is not None
    here = _current(doc, pred.path)
    for candidate in _candidates(here, pred, want, kept):
        trial = set_path(copy.deepcopy(doc), pred.path, candidate)
        if pred.holds(trial) == want and _fits(trial, kept):
            return trial
    return None


def _current(doc: Any, path: JsonPath) -> Any:
    """The value at ``path``, or _DELETE when there is none (first, the value already there is tried)."""
    node = doc
    for step in path.steps:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return _DELETE
        elif not isinstance(node, dict) or step not in node:
            return _DELETE
        node = node[step]
    return node


def build(rules: Sequence[Rule], start: Any = None, context: str = "") -> Any:
    """A document for which every rule holds as wanted, in order; GenerationError otherwise."""
    doc = {} if start is None else copy.deepcopy(start)
    kept: list[tuple[Predicate, bool]] = []
    for i, rule in enumerate(rules):
        found = make(doc, rule.predicate, rule.want, kept)
        if found is None:
            said = rule.predicate.describe()
            others = ", ".join(dict.fromkeys(r.key for r in rules[:i])) or "nothing else"
            raise GenerationError(
                f"{rule.key}: the simulator cannot build an answer where "
                f"{'' if rule.want else 'not '}({said}) holds together with {others}{context}"
            )
        doc = found
        kept.append((rule.predicate, rule.want))
    return doc


# --- the profile's answers ---------------------------------------------------------------


def _envelope(spec: AnswerSpec) -> list[Rule]:
    return [Rule(f"probe.answer.envelope[{i}]", p) for i, p in enumerate(spec.envelope)]


def _failure_key(spec: AnswerSpec, i: int) -> str:
    return f'probe.failures[{i}].when (failure "{spec.failures[i].id}")'


def ok_answer(profile: Profile, effective: Mapping[str, bool]) -> Any:
    """The answer of a working service whose effective flags are ``effective``: envelope and
    shape hold, no failure shape does, data is present, and exactly the expected modes hold."""
    spec = profile.probe.answer
    rules = _envelope(spec)
    rules += [Rule(_failure_key(spec, i), f.when, False) for i, f in enumerate(spec.failures)]
    rules += [Rule(f"probe.answer.shape[{i}]", p) for i, p in enumerate(spec.shape)]
    if spec.data_present is not None:
        rules.append(Rule("probe.answer.data_present", spec.data_present))
    expected = set(spec.expected_modes(effective))
    rules += [
        Rule(f'probe.modes[{i}].when (mode "{m.id}")', m.when, m.id in expected) for i, m in enumerate(spec.modes)
    ]
    flags = " ".join(f"{k}={'on' if v else 'off'}" for k, v in effective.items())
    doc = build(rules, context=f" (effective flags: {flags})")
    if spec.count is not None:  # a count that agrees with the lists, where the rules allow it
        doc = _also_all(doc, spec.count, len(_SAMPLE_LIST), rules)
    _check(profile, doc, "ok", tuple(m.id for m in spec.modes if m.id in expected))
    return doc


def failure_answer(profile: Profile, failure_id: str, message: str) -> Any:
    """An answer of failure shape ``failure_id`` (the earlier shapes do not hold: the first
    match wins), saying ``message`` where the shape keeps its message."""
    spec = profile.probe.answer
    index = next((i for i, f in enumerate(spec.failures) if f.id == failure_id), None)
    if index is None:
        raise GenerationError(f"probe.failures: no failure shape {failure_id!r} in {profile.path}")
    shape = spec.failures[index]
    rules = _envelope(spec)
    rules += [Rule(_failure_key(spec, i), spec.failures[i].when, False) for i in range(index)]
    rules.append(Rule(_failure_key(spec, index), shape.when))
    doc = build(rules)
    if shape.message is not None:
        doc = _also_all(doc, shape.message, message, rules)
    _check(profile, doc, "failed", (), failure_id)
    return doc


def error_body(spec: AnswerSpec, message: str) -> Any:
    """What a non-ok status says, where the profile looks for it (its first error_detail path)."""
    return set_path({}, spec.error_detail[0], message) if spec.error_detail else {"detail": message}


def health_answer(profile: Profile, which: str, ok: bool, version: str) -> tuple[int, Any]:
    """(status, body) of a health endpoint that satisfies (or fails) its `ok` predicate."""
    endpoint: Endpoint | None = getattr(profile.health, which)
    assert endpoint is not None
    doc = build([Rule(f"health.{which}.ok", endpoint.ok)])
    if not ok:  # the same answer, saying it is not ok
        doc = build([Rule(f"health.{which}.ok", endpoint.ok, False)], start=doc)
    if endpoint.version is not None:
        doc = _also(doc, endpoint.version, version, endpoint.ok, ok)
    if endpoint.components is not None:
        doc = _also(doc, endpoint.components, {"simulator": "ok" if ok else "down"}, endpoint.ok, ok)
    return (endpoint.status if ok else 503), doc


def _also(doc: Any, path: JsonPath, value: Any, pred: Predicate, want: bool) -> Any:
    """``value`` at ``path`` unless that would change what ``pred`` says."""
    trial = set_path(copy.deepcopy(doc), path, value)
    return trial if pred.holds(trial) == want else doc


def _also_all(doc: Any, path: JsonPath, value: Any, rules: Sequence[Rule]) -> Any:
    """``value`` at ``path`` unless that would break a rule."""
    trial = set_path(copy.deepcopy(doc), path, value)
    return trial if all(r.predicate.holds(trial) == r.want for r in rules) else doc


def _check(profile: Profile, doc: Any, kind: str, modes: tuple[str, ...], failure: str | None = None) -> None:
    """What the console will make of it: the profile's own classify must agree."""
    got = profile.probe.answer.classify(profile.probe.answer.status, doc)
    if got.kind != kind or (kind == "ok" and set(got.modes) != set(modes)) or got.failure != failure:
        raise GenerationError(
            f"probe.answer: the generated answer classifies as {got.kind} "
            f"(modes {', '.join(got.modes) or 'none'}; {got.message or 'no message'}), not {kind}"
        )


def flag_combinations(profile: Profile) -> Iterator[dict[str, bool]]:
    ids = profile.flags.ids
    for values in itertools.islice(itertools.product((True, False), repeat=len(ids)), MAX_FLAG_COMBINATIONS):
        yield dict(zip(ids, values, strict=True))


def check_profile(profile: Profile) -> None:
    """Every answer the simulated service may give can be generated; GenerationError names the key."""
    for values in flag_combinations(profile):
        ok_answer(profile, profile.flags.effective(values))
    for f in profile.probe.answer.failures:
        failure_answer(profile, f.id, "simulated failure")
    for which in ("liveness", "readiness"):
        if getattr(profile.health, which) is not None:
            health_answer(profile, which, True, "sim")
            health_answer(profile, which, False, "sim")
