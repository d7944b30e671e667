"""The runbook's decision matrix, evaluated against a snapshot.

Rows with a signal are lit by what the probes see; rows without one are symptoms
only a person can judge, lit when the operator declares them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from console.config.model import Config, Environment, MatrixRow, Thresholds
from console.probes.snapshot import EnvironmentSnapshot
from console.profile import profile_of

if TYPE_CHECKING:
    from console.flags import FlagSet

SEVERITY_ORDER = {"HIGH": 0, "MEDIUM": 1, "LOW": 2}


@dataclass(frozen=True)
class DecisionMatrix:
    """An environment's decision matrix: its rows (the config's, else its profile's), the
    matrix's words for each action, and what the functional probe is called."""

    rows: tuple[MatrixRow, ...]
    titles: Mapping[str, str]
    probe: str = "the functional probe"
    # A flag action's end state (flag id -> on/off): where every host already has it, the
    # action is in effect and running it again changes nothing.
    flag_targets: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)

    def title(self, action: str) -> str:
        return self.titles.get(action, action)


def matrix_of(config: Config, env: Environment) -> DecisionMatrix:
    """The matrix that decides for ``env``: a [[decision_matrix]] in the config overrides
    the one in the environment's profile."""
    profile = profile_of(env)
    rows = config.decision_matrix or tuple(
        MatrixRow(r.symptom, r.severity, r.action, r.timeline, r.signal, r.above, r.advice) for r in profile.matrix
    )
    titles = {a.id: a.short_title or a.title for a in profile.actions}
    targets = {}
    for a in profile.actions:
        if a.kind == "flags":
            target = {f.id: True for f in profile.flags.flags} if a.others == "on" else {}
            targets[a.id] = {**target, **dict.fromkeys(a.turn_off, False)}
    return DecisionMatrix(rows, titles, profile.probe.request.title or profile.probe.title, targets)


@dataclass(frozen=True)
class Finding:
    row: MatrixRow
    lit: bool
    evidence: str  # what was seen (or "declared by the operator", or why unknown)
    known: bool = True  # False when the probes could not measure the signal
    unmeasured: tuple[tuple[str, str], ...] = ()  # (host, why) where the signal is unknown


@dataclass(frozen=True)
class Recommendation:
    action: str | None  # None: nothing in the matrix is lit
    severity: str | None
    timeline: str | None
    symptom: str | None
    advice: str | None
    findings: tuple[Finding, ...]
    # What could not be read or measured: with any, the answer is never "no action".
    problems: tuple[str, ...] = ()
    # What is known to be wrong but no signal row covers (not ready, not healthy).
    symptoms: tuple[str, ...] = ()
    action_title: str | None = None  # the matrix's words for the action
    # The recommended action is already in effect on every host (env file and process), yet
    # the symptom is there: running it again changes nothing; the runbook's next word is escalate.
    in_effect: bool = False
    # Not in effect, but every host's env file already has the action's flags: the running API
    # does not (not running, or started before the edit). Running it again changes no file and
    # restarts nothing; what is left is a restart that takes (the runbook's troubleshooting).
    in_files: bool = False
    # With in_files: each host whose running API lacks the flags, and why (not running, running
    # without them, its flags unread), so the words name those hosts and not the fleet.
    not_taken: tuple[tuple[str, str], ...] = ()
    hosts: int = 0  # how many hosts the snapshot had

    @property
    def changes_nothing(self) -> bool:
        """Running the recommended action again would change nothing."""
        return self.in_effect or self.in_files

    @property
    def assessed(self) -> bool:
        """Every signal row was measured and every probe answered."""
        return not self.problems

    @property
    def title(self) -> str:
        if self.action is None:
            if self.problems:
                more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
                return f"Cannot assess: {self.problems[0]}{more}"
            if self.symptoms:
                more = f" (and {len(self.symptoms) - 1} more)" if len(self.symptoms) > 1 else ""
                return f"Investigate: {self.symptoms[0]}{more} — no row of the decision matrix covers it"
            return "No action: no symptom in the decision matrix"
        return self.action_title or self.action

    @property
    def lit(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.lit)

    @property
    def unknown(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.known)

    def describe(self) -> str:
        if self.action is None:
            return self.title
        said = f"{self.title} — {self.severity}, {self.timeline}: {self.symptom}"
        if self.in_effect:
            return f"{said} — {IN_EFFECT}"
        if self.in_files:
            return (
                f"{said} — its flags are in every env file already, but {self.not_taken_said}: running it"
                " again changes nothing; restart the API (see the runbook's troubleshooting)"
            )
        return said

    @property
    def not_taken_said(self) -> str:
        """Where the running API lacks the flags the env files have: "the running API does not
        have them", or "on 1 of 3 hosts the API does not have them (b: not running)"."""
        if not self.not_taken:
            return "the running API does not have them"
        if self.hosts == 1:
            return {
                NOT_RUNNING: "the API is not running",
                UNREAD: "the running API's flags could not be read",
            }.get(self.not_taken[0][1], "the running API does not have them")
        n = f"{len(self.not_taken)} of {self.hosts} hosts"
        more = len(self.not_taken) - 5
        if all(why == RUNNING_WITHOUT for _, why in self.not_taken):
            names = ", ".join(host for host, _ in self.not_taken[:5]) + (f" and {more} more" if more > 0 else "")
            return f"on {n} ({names}) the running API does not have them"
        where = "; ".join(f"{host}: {why}" for host, why in self.not_taken[:5]) + (
            f"; and {more} more" if more > 0 else ""
        )
        return f"on {n} the API does not have them ({where})"


# Said without a cause: the flags may never have been on, so not "persists after it".
IN_EFFECT = "already in effect on every host (the flags are as it sets them), yet the symptom is there: escalate"

NOT_RUNNING = "not running"
RUNNING_WITHOUT = "running without them"
UNREAD = "its flags could not be read"


def not_taken(target: Mapping[str, bool], snapshot: EnvironmentSnapshot) -> tuple[tuple[str, str], ...]:
    """The hosts whose running API does not show the target flags, each with why."""
    out = []
    for h in snapshot.hosts:
        p = h.flags.process
        if p is None:
            out.append((h.host, NOT_RUNNING if h.flags.not_running else UNREAD))
        elif not _has(p, target):
            out.append((h.host, RUNNING_WITHOUT))
    return tuple(out)


def in_files(target: Mapping[str, bool], snapshot: EnvironmentSnapshot) -> bool:
    """Every host's env file already has the action's flags (known, as for ``in_effect``)."""
    return _every_host_has(target, snapshot, process=False)


def in_effect(target: Mapping[str, bool], snapshot: EnvironmentSnapshot) -> bool:
    """Every host's env file and running process already have the action's flags (known,
    not guessed: one host unread and it is not in effect)."""
    return _every_host_has(target, snapshot, process=True)


def _every_host_has(target: Mapping[str, bool], snapshot: EnvironmentSnapshot, *, process: bool) -> bool:
    if not target or not snapshot.hosts:
        return False
    for h in snapshot.hosts:
        for flags in (h.flags.env_file, h.flags.process) if process else (h.flags.env_file,):
            if flags is None or not _has(flags, target):
                return False
    return True


def _has(flags: FlagSet, target: Mapping[str, bool]) -> bool:
    """``flags`` are as ``target`` sets them."""
    return all(flags.get(flag) == on for flag, on in target.items())


def signal_value(snapshot: EnvironmentSnapshot, signal: str) -> float | bool | None:
    return getattr(snapshot, signal)


def _evidence(signal: str, value: float | bool | None, probe: str) -> str:
    if value is None:
        return "not measured"
    if signal == "response_time_s":
        return f"{probe} took {value:.2f}s"
    if signal == "error_rate":
        # What is counted (the log's ERROR lines over its probe requests), not "requests
        # failed": an ERROR line may be a start-up failure, with no request behind it.
        return f"{value:.0%} ERROR lines per {probe} request"
    if signal == "memory_mb":
        return f"RSS {value:.0f} MB"
    if signal == "missing_data":
        return f"{probe} came back without data" if value else f"{probe} has data"
    if signal == "unhealthy":
        return "health or readiness failing" if value else "healthy"
    return str(value)


def _lit(row: MatrixRow, value: float | bool) -> bool:
    if isinstance(value, bool):
        return value
    return row.above is not None and math.isfinite(value) and value > row.above


def _finding(row: MatrixRow, snapshot: EnvironmentSnapshot, probe: str) -> Finding:
    """A signal row, host by host: lit if any host shows it; otherwise known only if every
    host was measured (one unmeasured host could be the one above the threshold)."""
    assert row.signal is not None
    per_host = [(h.host, *h.signal(row.signal)) for h in snapshot.hosts]
    n = len(per_host)
    lit = [(name, v) for name, v, _ in per_host if v is not None and _lit(row, v)]
    if lit:
        worst = max((v for _, v in lit), key=float)
        where = f" on {len(lit)} of {n} hosts ({', '.join(name for name, _ in lit[:5])})" if n > 1 else ""
        return Finding(row, True, _evidence(row.signal, worst, probe) + where)
    unknown = [(name, why) for name, v, why in per_host if v is None]
    if unknown:
        if n == 1:
            why = unknown[0][1]
        else:
            why = f"{len(unknown)} of {n} hosts not measured — " + "; ".join(f"{h}: {w}" for h, w in unknown[:3])
        return Finding(row, False, f"cannot tell: {why}", known=False, unmeasured=tuple(unknown))
    values = [v for _, v, _ in per_host]
    shown = max(values, key=float) if values else None
    return Finding(row, False, _evidence(row.signal, shown, probe))


def evaluate(
    matrix: DecisionMatrix, snapshot: EnvironmentSnapshot, declared: frozenset[str] | set[str] = frozenset()
) -> Recommendation:
    """Light the rows the snapshot (or the operator) shows; recommend the most severe.

    "No action" only when every signal row was measured on every host and none is lit,
    and every probe answered; otherwise the recommendation carries what could not be assessed.
    """
    findings = []
    for row in matrix.rows:
        if row.signal is None:
            lit = row.symptom in declared
            findings.append(Finding(row, lit, "declared by the operator" if lit else "only a person can judge"))
            continue
        findings.append(_finding(row, snapshot, matrix.probe))
    problems = list(dict.fromkeys(snapshot.problems()))
    # An unknown row whose every reason is already listed (a host out of reach) is named
    # once, together with the others; one with a reason of its own says it.
    said = set(problems)
    covered = []
    for f in findings:
        if f.known:
            continue
        if all(f"{host}: {why}" in said for host, why in f.unmeasured):
            covered.append(f.row.symptom)
        else:
            problems.append(f"{f.row.symptom}: {f.evidence}")
    if covered:
        problems.append(f"so the decision matrix cannot tell: {', '.join(covered)}")
    if not snapshot.hosts:
        problems.insert(0, "no host to probe")
    symptoms = tuple(snapshot.symptoms())
    lit_rows = [f for f in findings if f.lit]
    if not lit_rows:
        return Recommendation(None, None, None, None, None, tuple(findings), tuple(problems), symptoms)
    best = min(lit_rows, key=lambda f: (SEVERITY_ORDER.get(f.row.severity, 9), findings.index(f)))
    r = best.row
    target = matrix.flag_targets.get(r.action, {})
    return Recommendation(
        r.action,
        r.severity,
        r.timeline,
        r.symptom,
        r.advice,
        tuple(findings),
        tuple(problems),
        symptoms,
        matrix.title(r.action),
        effect := in_effect(target, snapshot),
        files := not effect and in_files(target, snapshot),
        not_taken(target, snapshot) if files else (),
        len(snapshot.hosts),
    )


def limit(rows: tuple[MatrixRow, ...], signal: str) -> float | None:
    """The matrix's threshold for a signal (e.g. 5 s for response time), for charts."""
    values = [r.above for r in rows if r.signal == signal and r.above is not None]
    return min(values) if values else None


def memory_level(thresholds: Thresholds, rss_mb: float | None) -> str:
    """The service's own memory bands: ok < 500 MB, warn < 1000 MB, then high."""
    if rss_mb is None:
        return "unknown"
    if rss_mb < thresholds.memory_ok_mb:
        return "ok"
    if rss_mb < thresholds.memory_warn_mb:
        return "warn"
    return "high"
