"""What the journal says about an environment right now, beside what the probes see: the
approval requests open on it, and the rollback in effect (the one a restore would put back).

Read only; the dashboard shows it on each panel, the report screen offers restore from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.config.model import Config
from console.journal import RunSummary
from console.journal.requests import OPEN, RequestState

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from console.engine.plan import PlanCatalogue
    from console.journal import Journal
    from console.journal.index import RunRow
    from console.probes.snapshot import EnvironmentSnapshot

EDIT_ENV = "edit-env"  # the flag edit's step id (console/plans/env_edit.py), not imported: plans stay unloaded

RESTORABLE_OUTCOMES = ("succeeded", "failed", "interrupted")


def rolled_back_badge(run: RunSummary) -> str:
    """How the panel and `status` name the rollback in effect: "ROLLED BACK" only for one that
    succeeded; one that failed or was cut off changed something, but did not roll back."""
    return "ROLLED BACK" if run.outcome == "succeeded" else f"ROLLBACK {run.outcome.upper()}"


@dataclass(frozen=True)
class Standing:
    environment: str
    requests: tuple[RequestState, ...] = ()  # open (pending or approved), oldest first
    rolled_back: RunSummary | None = None  # the rollback a restore would put back now


def started_data(run: RunSummary) -> dict[str, Any]:
    """The data of a run's (first) run_started record."""
    return next((r["data"] for r in run.records if r["type"] == "run_started"), {})


def restored_ids(runs: list[RunSummary]) -> set[str]:
    """Runs a later restore already put back."""
    return {
        str(started_data(r).get("restores"))
        for r in runs
        if r.action == "restore" and r.outcome == "succeeded" and started_data(r).get("restores")
    }


def can_restore(config: Config, plans: PlanCatalogue, run: RunSummary, restored: set[str]) -> bool:
    """Did ``run`` change something that a restore could put back (and no restore has)?"""
    if run.action in (None, "restore") or run.outcome not in RESTORABLE_OUTCOMES:
        return False
    if run.run_id in restored or not any(run.undo_facts().values()) or run.env not in config.environments:
        return False
    # Only for a run that changed something: the engine's plan module (and with it the probes
    # and the HTTP client) is not loaded for the dashboard's first look at the journal.
    from console.engine.plan import PlanError

    try:
        original = plans.build(run.action or "", config.environment(run.env), config, run.plan.get("options") or {})
    except PlanError:
        return False
    return bool(plans.undo_steps(original, run.undo_facts()))


def rolled_back(
    config: Config,
    plans: PlanCatalogue,
    runs: Sequence[RunSummary | RunRow],  # whole runs, or their rows in the run index
    environment: str,
    load: Callable[[Any], RunSummary] = lambda run: run,
) -> RunSummary | None:
    """The latest rollback on ``environment`` that changed something no restore has put
    back yet. ``runs``: oldest first, whole runs or the run index's rows with ``load`` to
    read a row's records — only the restores and candidates met from the newest back are."""
    restored: set[str] = set()
    for row in reversed(runs):
        if row.env != environment:
            continue
        if row.action == "restore":
            if row.outcome == "succeeded":
                restored |= restored_ids([load(row)])
            continue  # a restore of a run comes after it: those newer than a candidate are seen first
        if row.action is None or row.outcome not in RESTORABLE_OUTCOMES or row.run_id in restored:
            continue
        run = load(row)
        if can_restore(config, plans, run, restored):
            return run
    return None


def standing(
    config: Config,
    plans: PlanCatalogue,
    runs: Sequence[RunSummary | RunRow],  # whole runs, or their rows in the run index
    environment: str,
    load: Callable[[Any], RunSummary] = lambda run: run,
) -> Standing:
    """What the journal says of ``environment``; ``runs`` and ``load`` as for ``rolled_back``
    (a row that says open is read again: a request may have lapsed since it was indexed)."""
    mine = [r for r in runs if r.env == environment]
    requests = []
    for row in mine:
        if row.outcome in OPEN:
            run = load(row)
            if run.request is not None and run.outcome in OPEN:
                requests.append(run.request)
    return Standing(environment, tuple(requests), rolled_back(config, plans, mine, environment, load))


def started_since(run: RunSummary | RunRow, since: float) -> bool:
    """Started at or after ``since`` (a second's slack: the journal's clock is in whole seconds)."""
    return run.started_at is not None and run.started_at.timestamp() >= since - 1


@dataclass(frozen=True)
class SinceRun:
    """What the hosts' env files show of a rollback's edit now. A host the snapshot could not
    read is in none of the lists: nothing is claimed about it."""

    changed: list[str]  # no longer as the run left it: changed since, outside the console
    kept: list[str]  # as the run left it
    as_before: list[str]  # of ``changed``: the flags it had before the run, again

    @property
    def no_longer_in_effect(self) -> bool:
        return bool(self.changed) and not self.kept

    def note(self) -> str | None:
        """The line that says so (the console's panel and `status` alike), or None."""
        if not self.changed:
            return None
        where = f"the env file on {', '.join(self.changed)}"
        if self.as_before == self.changed:
            return (
                f"{where} has the flags it had before the run again (changed since, outside the console): "
                "a restore would change no flag"
            )
        return f"{where} no longer has the flags the run left: changed since, outside the console"


def changed_since(run: RunSummary, snapshot: EnvironmentSnapshot | None) -> SinceRun:
    """Of the hosts whose env file ``run`` edited, those whose flags the snapshot shows no
    longer as the run left them, those it shows as left, and those back as before the run."""
    edits = run.facts().get(EDIT_ENV) or {}
    hosts = {h.host: h for h in snapshot.hosts} if snapshot is not None else {}
    changed, kept, as_before = [], [], []
    for name, facts in edits.items():
        after = facts.get("after") if facts.get("changed") else None
        host = hosts.get(name)
        if not isinstance(after, dict) or host is None or host.flags.env_file is None:
            continue
        now = host.flags.env_file.as_dict()
        if any(now.get(flag) != on for flag, on in after.items()):
            changed.append(name)
            before = facts.get("before")
            if isinstance(before, dict) and before and all(now.get(flag) == on for flag, on in before.items()):
                as_before.append(name)
        else:
            kept.append(name)
    return SinceRun(sorted(changed), sorted(kept), sorted(as_before))


def drill_start(journal: Journal, config_path: str) -> float | None:
    """When the drill run on the config at ``config_path`` started (its drill_started record):
    drills share one journal, and an earlier drill's runs belong to a simulation long gone.
    Without a record (another journal was the drill's), when the config was written: the
    drill writes it as it starts, and no run on it can be older. None: neither is known."""
    from pathlib import Path

    from console.journal.records import parse_ts

    mine = Path(config_path).resolve()
    for r in reversed(journal.loose_records("drill_started")):
        given = (r.get("data") or {}).get("config")
        when = parse_ts(r.get("ts"))
        if isinstance(given, str) and when is not None and Path(given).resolve() == mine:
            return when.timestamp()
    try:
        return mine.stat().st_mtime
    except OSError:
        return None


def standings_from_index(
    journal: Journal,
    config: Config,
    plans: PlanCatalogue,
    names: list[str],
    *,
    drills: bool = False,
    since: float | None = None,
) -> dict[str, Standing]:
    """``standing`` for each of ``names``, for a one-shot command at any journal size: from
    the run index's rows, reading the records of only the runs that can matter.
    ``since``: only runs started from then on (a drill's own)."""
    rows = [r for r in journal.rows(drills=drills) if since is None or started_since(r, since)]
    return {name: standing(config, plans, rows, name, lambda row: journal.run(row.run_id)) for name in names}
