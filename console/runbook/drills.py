"""Rehearsal drills: a scenario's faults in the simulator, and a scorecard for the trainee.

A scenario is a TOML file (sample_configs/drills/). The score compares what the trainee
did, as the journal records it, with the runbook: the right action, the time to decide
and to a validated recovery against the runbook's targets, and the checklist.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from console import files, safe_text
from console.engine.standing import EDIT_ENV
from console.journal import Journal, RunSummary
from console.journal.records import parse_ts
from console.profile import DEFAULT_PROFILE, PROFILE_DIR, ProfileError, profile_at, profile_of
from console.profile.model import Profile
from console.profile.model import Scenario as ProfileScenario
from console.runbook.checklist import checklist_of

SCENARIO_DIR = Path(__file__).resolve().parent.parent.parent / "sample_configs" / "drills"
FAULT_KEYS = (
    "latency_s",
    "error_rate",
    "memory_mb",
    "crash_on_start",
    "stale_restart",
    "ready_down",
    "rollback_script_fails",
    "caused_by",
)


class ScenarioError(ValueError):
    """A scenario file is unusable; the message names the file and the key."""


@dataclass(frozen=True)
class Fault:
    environment: str
    values: dict[str, Any]
    host: int | None = None  # 1-based; None: every host of the environment


@dataclass(frozen=True)
class Scenario:
    id: str
    path: Path
    title: str
    briefing: str
    environment: str  # where the incident is
    expected_action: str
    accept: tuple[str, ...]
    target_s: float
    target: str
    environments: tuple[str, ...] = ("staging", "production")
    hosts: int = 1
    database: bool = False
    faults: tuple[Fault, ...] = ()
    config_overlay: str = ""  # TOML appended to the simulator's config (matrix, thresholds)
    lesson: str = ""  # shown on the scorecard
    profile: str | None = None  # the service profile it rehearses; None: the default profile


def _require(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise ScenarioError(f"{where}: missing key `{key}`")
    value = data[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ScenarioError(f"{where}: `{key}` must be {kind.__name__}, got {value!r}")
    return value


def load_scenario(path: Path) -> Scenario:
    try:  # a file the trainee names: never a named pipe or a device, never a hang
        data = tomllib.loads(files.read_file(path, max_bytes=1024 * 1024).decode("utf-8"))
    except files.FileProblem as exc:
        raise ScenarioError(f"{path}: {exc.reason.lstrip(': ')}") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ScenarioError(f"{path}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}") from None
    drill = data.get("drill")
    if not isinstance(drill, dict):
        raise ScenarioError(f"{path}: missing [drill] table")
    where = f"{path} [drill]"
    profile_key = drill.get("profile")
    if profile_key is not None and (not isinstance(profile_key, str) or not profile_key.strip()):
        raise ScenarioError(f"{where}: `profile` must be the path of a service profile, got {profile_key!r}")
    profile_file = str((path.parent / profile_key).resolve()) if profile_key else None
    try:
        rollbacks = tuple(a.id for a in profile_at(profile_file).rollbacks)
    except ProfileError as exc:
        raise ScenarioError(f"{where}: profile: {exc}") from None
    accept = tuple(drill.get("accept") or [drill.get("expected_action")])
    for action in (drill.get("expected_action"), *accept):
        if action not in rollbacks:
            raise ScenarioError(f"{where}: action {action!r} is not one of {', '.join(rollbacks)}")
    environments = tuple(drill.get("environments", ("staging", "production")))
    environment = _require(drill, "environment", str, where)
    if environment not in environments:
        raise ScenarioError(f"{where}: environment {environment!r} is not in environments {list(environments)}")
    faults = []
    for i, f in enumerate(data.get("faults", [])):
        fw = f"{path} [[faults]] #{i + 1}"
        env = _require(f, "environment", str, fw)
        if env not in environments:
            raise ScenarioError(f"{fw}: environment {env!r} is not in environments {list(environments)}")
        unknown = set(f) - {"environment", "host", *FAULT_KEYS}
        if unknown:
            raise ScenarioError(f"{fw}: unknown key(s) {', '.join(sorted(unknown))} (faults: {', '.join(FAULT_KEYS)})")
        faults.append(Fault(env, {k: v for k, v in f.items() if k in FAULT_KEYS}, f.get("host")))
    overlay = drill.get("config_overlay", "")
    if overlay:
        try:
            tomllib.loads(overlay)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{where}: config_overlay is not valid TOML: {exc}") from None
    return Scenario(
        id=_require(drill, "id", str, where),
        path=path,
        title=_require(drill, "title", str, where),
        briefing=safe_text.reflow(_require(drill, "briefing", str, where)),
        environment=environment,
        expected_action=_require(drill, "expected_action", str, where),
        accept=accept,
        target=_require(drill, "target", str, where),
        target_s=_require(drill, "target_s", float, where),
        environments=environments,
        hosts=int(drill.get("hosts", 1)),
        database=bool(drill.get("database", False)),
        faults=tuple(faults),
        config_overlay=overlay,
        lesson=str(drill.get("lesson", "")).strip(),
        profile=profile_file,
    )


def _of_profile(s: ProfileScenario, profile: str | None) -> Scenario:
    return Scenario(
        id=s.id,
        path=Path(s.source),
        title=s.title,
        briefing=safe_text.reflow(s.briefing),
        environment=s.environment,
        expected_action=s.expected_action,
        accept=s.accept,
        target_s=s.target_s,
        target=s.target,
        environments=s.environments,
        hosts=s.hosts,
        database=s.database,
        faults=tuple(Fault(f.environment, dict(f.values), f.host) for f in s.faults),
        config_overlay=s.config_overlay,
        lesson=s.lesson,
        profile=profile,
    )


def scenarios(directory: Path | None = None, *, profile: str | None = None) -> dict[str, Scenario]:
    """The drill scenarios: the files in ``directory``; else every shipped profile's (its
    [[drills.scenario]] and its drill directory), or only ``profile``'s when one is named."""
    out: dict[str, Scenario] = {}
    if directory is not None:
        for path in sorted(directory.glob("*.toml")):
            s = load_scenario(path)
            out[s.id] = s
        return out
    paths = [profile] if profile else [None, *sorted(str(p) for p in PROFILE_DIR.glob("*.toml"))]
    for p in paths:
        try:
            found = profile_at(p)
        except ProfileError as exc:
            raise ScenarioError(str(exc)) from None
        own = None if p is None or Path(p).resolve() == DEFAULT_PROFILE.resolve() else str(Path(p).resolve())
        for s in found.scenarios:
            out.setdefault(s.id, _of_profile(s, own))
    return out


def pick(
    name: str | None,
    *,
    rng: random.Random | None = None,
    directory: Path | None = None,
    profile: str | None = None,
) -> Scenario:
    """A scenario by id or path; None picks one at random (the trainee is not told which)
    among ``profile``'s (default: the default profile's)."""
    if name and Path(name).suffix == ".toml":
        return load_scenario(Path(name))
    known = scenarios(directory, profile=profile)
    if name is None:
        own = scenarios(directory, profile=profile or str(DEFAULT_PROFILE)) if directory is None else known
        return (rng or random.SystemRandom()).choice(list(own.values()))
    if name not in known:
        raise ScenarioError(f"no drill scenario {name!r} (known: {', '.join(known)})")
    return known[name]


@dataclass
class Scorecard:
    scenario: str
    title: str
    expected: str
    started_at: float
    ended_at: float
    first_action: str | None = None
    recovered_by: str | None = None
    right_action: bool = False
    time_to_decision_s: float | None = None
    time_to_recovery_s: float | None = None
    run_duration_s: float | None = None
    target_s: float = 0.0
    target: str = ""
    within_target: bool = False
    checklist_done: int = 0
    checklist_total: int = 0
    fixes_applied: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    lesson: str = ""

    @property
    def score(self) -> int:
        """Out of 100: the right action 40, recovery within the runbook's target 30, checklist 30."""
        points = 40 if self.right_action else 0
        if self.recovered_by:
            points += 30 if self.within_target else 15
        if self.checklist_total:
            points += round(30 * self.checklist_done / self.checklist_total)
        return points

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()} | {"score": self.score}

    def _uncured(self) -> str:
        passed = [r["action"] for r in self.runs if r.get("outcome") == "succeeded"]
        if not passed:
            return ""
        return f"; {', '.join(passed)} passed its validations but left the fault's cause on"

    def text(self) -> str:
        def secs(v: float | None) -> str:
            return "—" if v is None else (f"{v:.0f}s" if v < 120 else f"{v / 60:.1f} min")

        lines = [
            f"Drill scorecard — {self.title}",
            f"  action      {'RIGHT' if self.right_action else 'WRONG'}: expected {self.expected}; "
            f"first chose {self.first_action or 'nothing'}; recovered by {self.recovered_by or 'nothing'}",
            f"  decision    {secs(self.time_to_decision_s)} from the start of the drill to the right rollback",
            f"  recovery    {secs(self.time_to_recovery_s)} to a validated recovery; the rollback itself took "
            f"{secs(self.run_duration_s)} (runbook target {self.target}: {'met' if self.within_target else 'MISSED'})"
            if self.recovered_by
            else f"  recovery    none: not recovered (runbook target {self.target}){self._uncured()}",
            f"  checklist   {self.checklist_done}/{self.checklist_total} items ticked",
        ]
        if self.fixes_applied:
            fixes = "fix" if self.fixes_applied == 1 else "fixes"
            lines.append(f"  fixes       {self.fixes_applied} runbook {fixes} applied during the runs")
        lines.append(f"  score       {self.score}/100")
        if self.lesson:
            lines.append(f"  lesson      {self.lesson}")
        return "\n".join(lines)


def _ts(record: dict[str, Any]) -> float:
    ts = parse_ts(record.get("ts"))
    return ts.timestamp() if isinstance(ts, datetime) else 0.0


def cures(scenario: Scenario, run: RunSummary, profile: Profile | None) -> bool:
    """Did ``run`` leave every cause of the drill's faults off: a code rollback (no feature
    code is left to act), or a flag edit that turned them off — in what acts — on every host?
    Only a fault that names its cause (``caused_by``) can be shown cured this way."""
    causes = {
        str(f.values["caused_by"])
        for f in scenario.faults
        if f.environment == scenario.environment and f.values.get("caused_by")
    }
    if profile is None or not causes:
        return False
    actions = {a.id: a for a in profile.rollbacks}
    action = actions.get(run.action or "")
    kinds = {action.kind} | {actions[c].kind for c in action.combines if c in actions} if action else set()
    if "code" in kinds:
        return True
    rules = profile.flags
    edits = run.facts().get(EDIT_ENV) or {}
    if not edits:
        return False
    for facts in edits.values():
        after = facts.get("after") if isinstance(facts, dict) else None
        if not isinstance(after, dict) or set(after) != set(rules.ids):
            return False
        effective = rules.effective(after)
        if any(effective.get(cause, True) for cause in causes):
            return False
    return True


def score(
    scenario: Scenario,
    journal: Journal,
    started_at: float,
    ended_at: float,
    checklist_total: int,
    profile: Profile | None = None,
) -> Scorecard:
    """Score the drill from the journal: what was run on the incident's environment, and when.

    The recovery is the first run that succeeded with an action the drill accepts, or else
    one that turned the faults' cause off (``profile``: the service's, see ``cures``). Any
    other run that passed its validations is not a recovery: they do not look at the
    drill's symptom, which may well remain."""
    card = Scorecard(
        scenario.id,
        scenario.title,
        scenario.expected_action,
        started_at,
        ended_at,
        target_s=scenario.target_s,
        target=scenario.target,
        checklist_total=checklist_total,
        lesson=scenario.lesson,
    )
    runs: list[RunSummary] = [
        r
        for r in journal.runs(scenario.environment, drills=True)
        if r.started_at and started_at <= r.started_at.timestamp() <= ended_at and r.action != "restore"
    ]
    for r in runs:
        card.runs.append({"run": r.run_id, "action": r.action, "outcome": r.outcome, "duration_s": r.duration_s})
        card.fixes_applied += sum(
            1 for rec in r.records if rec["type"] == "decision" and (rec.get("data") or {}).get("decision") == "fix"
        )
    if runs:
        card.first_action = runs[0].action
    chosen_right = [r for r in runs if r.action in scenario.accept]
    if chosen_right and chosen_right[0].started_at:
        card.time_to_decision_s = chosen_right[0].started_at.timestamp() - started_at
    succeeded = [r for r in runs if r.outcome == "succeeded"]
    right = [r for r in succeeded if r.action in scenario.accept]
    cured = [r for r in succeeded if cures(scenario, r, profile)]
    recovery = right[0] if right else (cured[0] if cured else None)
    if recovery is not None:
        card.recovered_by = recovery.action
        card.right_action = bool(right)
        card.run_duration_s = recovery.duration_s
        finished = recovery.finished_at.timestamp() if recovery.finished_at else ended_at
        card.time_to_recovery_s = finished - started_at
        card.within_target = (recovery.duration_s or 0) <= scenario.target_s
        ticks: dict[str, bool] = {}
        for rec in recovery.records:
            if rec["type"] == "checklist":
                ticks[str(rec["data"].get("item"))] = bool(rec["data"].get("ticked"))
        card.checklist_done = sum(ticks.values())
    return card


def finish_drill(
    scenario: Scenario, journal: Journal, started_at: float, ended_at: float, config: Any
) -> Scorecard | None:
    """End a drill once, for both faces: score it and journal the scorecard — unless it was
    scored already (the console scores it when the trainee presses x; the command that
    opened the console must not score it again): then None."""
    # This drill's card is the one timed from this drill's start: drills share the journal,
    # and another one (the same scenario even) may have ended moments ago.
    scored = [
        r
        for r in journal.loose_records("drill_scored")
        if r.get("env") == scenario.environment and (r.get("data") or {}).get("started_at") == started_at
    ]
    if scored:
        return None
    card = score(
        scenario,
        journal,
        started_at,
        ended_at,
        checklist_total=len(checklist_of(config, scenario.environment)),
        profile=_profile(config, scenario.environment),
    )
    journal.append("drill_scored", env=scenario.environment, data=card.as_dict())
    return card


def _profile(config: Any, environment: str) -> Profile | None:
    try:
        return profile_of(config.environment(environment))
    except (KeyError, ProfileError, AttributeError):
        return None


def scorecards(journal: Journal) -> list[dict[str, Any]]:
    """Every drill scorecard in the journal, oldest first (`history --drills`)."""
    return [dict(r.get("data") or {}, ts=r["ts"]) for r in journal.loose_records("drill_scored")]


def scorecards_text(cards: list[dict[str, Any]]) -> str:
    if not cards:
        return "No drill scored yet: `rollback-console drill` to rehearse."
    head = (
        f"{'Date':<20}  {'Scenario':<16}  {'Expected':<22}  {'Chosen':<22}  {'Decision':>8}  {'Recovery':>8}  "
        f"{'Checklist':>9}  Score"
    )
    lines = [head, "-" * len(head)]
    for c in cards:

        def secs(v: Any) -> str:
            return "—" if v is None else f"{float(v):.0f}s"

        lines.append(
            f"{str(c.get('ts', ''))[:16].replace('T', ' '):<20}  {c.get('scenario')!s:<16}  "
            f"{c.get('expected')!s:<22}  {c.get('recovered_by') or c.get('first_action') or '—'!s:<22}  "
            f"{secs(c.get('time_to_decision_s')):>8}  {secs(c.get('time_to_recovery_s')):>8}  "
            f"{c.get('checklist_done', 0)}/{c.get('checklist_total', 0):<7}  {c.get('score')}/100"
        )
    return "\n".join(lines)
