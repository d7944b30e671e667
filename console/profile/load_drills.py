"""Reading a profile's drill scenarios: written in the profile ([[drills.scenario]]) or as
files in a directory ([drills] directory, each with [drill] and [[faults]]), each checked
against the profile's flags and actions; a scenario file's problems carry its own path.

A mixin of the profile loader (load.py), run after the actions are read.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from console.config.reader import _non_empty, _resolve_path, _Table, _within
from console.profile import checks
from console.profile.checks import unknown
from console.profile.model import Fault, Scenario
from console.profile.vocabulary import FAULT_KEYS

if TYPE_CHECKING:
    from console.config.load import _Loader

    _Base = _Loader
else:
    _Base = object


class DrillReader(_Base):
    flag_ids: tuple[str, ...] = ()
    rollback_ids: tuple[str, ...] = ()
    has_database = False

    def _drills(self, root: _Table) -> tuple[tuple[Scenario, ...], str | None]:
        t = root.table("drills")
        if t is None:
            return (), None
        directory = t.get("directory", str, None, _non_empty)
        out = [self._scenario(st, st.tables("faults") or [], self.file) for st in t.tables("scenario") or []]
        if directory:
            directory = _resolve_path(self.base, directory)
            found = sorted(Path(directory).glob("*.toml")) if Path(directory).is_dir() else None
            if found is None:
                t.problem("directory", f"{directory} is not a directory")
            elif not found and not out:
                t.problem("directory", f"no drill scenario (*.toml) in {directory}")
            for path in found or []:
                scenario = self._scenario_file(path)
                if scenario is not None:
                    out.append(scenario)
        t.finish()
        seen: set[str] = set()
        for s in out:
            if s.id and s.id in seen:
                t.problem("scenario", f"drill scenario id {s.id!r} is used twice ({s.source})")
            seen.add(s.id)
        return tuple(out), directory

    def _scenario_file(self, path: Path) -> Scenario | None:
        """A scenario file ([drill] and [[faults]]), its problems reported with its own path."""
        from console.config.load import _Loader
        from console.profile.load import ProfileError, read_toml

        try:
            text, data = read_toml(path)
        except ProfileError as exc:
            self.problems.extend(exc.problems)
            return None
        loader = _Loader(path, text)  # its problems carry the scenario file's name and lines
        root = _Table(loader, data, ())
        drill = root.table("drill", required=True)
        faults = root.tables("faults") or []
        scenario = self._scenario(drill, faults, str(path)) if drill else None
        root.finish()
        self.problems.extend(loader.problems)
        return scenario

    def _scenario(self, t: _Table, faults: list[_Table], source: str) -> Scenario:
        environments = tuple(t.get("environments", list, ["staging", "production"], checks.names) or ())
        hosts = t.get("hosts", int, 1, _within(1, 50))
        environment = t.get("environment", str, check=_non_empty) or ""
        if environment and environment not in environments:
            t.problem("environment", unknown(environment, "an environment", environments) + " (the drill's)")
        expected = t.get("expected_action", str) or ""
        accept = t.get("accept", list, [expected], checks.names) or []
        for key, names in (("expected_action", [expected]), ("accept", accept)):
            for name in names:
                if name and name not in self.rollback_ids:
                    t.problem(key, unknown(name, "a rollback action", self.rollback_ids))
        database = t.get("database", bool, False)
        if database and not self.has_database:
            t.problem("database", 'the drill needs a database, and this profile has no action of kind = "database"')
        overlay = t.get("config_overlay", str, "")
        if overlay:
            try:
                tomllib.loads(overlay)
            except tomllib.TOMLDecodeError as exc:
                t.problem("config_overlay", f"not valid TOML: {exc}")
        scenario = Scenario(
            id=t.get("id", str, check=checks.id_check()) or "",
            title=t.get("title", str, check=_non_empty) or "",
            briefing=(t.get("briefing", str, check=_non_empty) or "").strip(),
            environment=environment,
            expected_action=expected,
            accept=tuple(accept),
            target=t.get("target", str, check=_non_empty) or "",
            target_s=t.get("target_s", float, check=_within(0, 86400, " s", low_open=True)) or 0.0,
            source=source,
            environments=environments,
            hosts=hosts,
            database=database,
            faults=tuple(self._fault(f, environments, hosts) for f in faults),
            config_overlay=overlay,
            lesson=t.get("lesson", str, "").strip(),
        )
        t.finish()
        return scenario

    def _fault(self, t: _Table, environments: tuple[str, ...], hosts: int) -> Fault:
        environment = t.get("environment", str) or ""
        if environment and environment not in environments:
            t.problem("environment", unknown(environment, "an environment", environments) + " (the drill's)")
        host = t.get("host", int, None, _within(1, hosts, f" (the drill has {hosts} host(s))"))
        t.used.update(FAULT_KEYS)  # so that a typo gets its "did you mean"
        values = []
        for key, kind in FAULT_KEYS.items():
            if key not in t.data:
                continue
            value = t.get(key, kind)
            if value is None:
                continue
            if key == "caused_by" and value and value not in self.flag_ids:
                t.problem(key, unknown(value, "a flag", self.flag_ids))
            elif key == "error_rate" and not 0 <= value <= 1:
                t.problem(key, f"a fraction from 0 to 1, got {value:g}")
            elif key in ("latency_s", "memory_mb") and value < 0:
                t.problem(key, f"must not be negative, got {value:g}")
            elif key == "rollback_script_fails" and value and not self.has_database:
                t.problem(key, 'there is no rollback script: this profile has no action of kind = "database"')
            values.append((key, value))
        t.finish()
        return Fault(environment, tuple(values), host)
