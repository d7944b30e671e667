"""Reading the runbook's tables of a profile: memory bands, decision matrix, actions,
validations, troubleshooting, checklist, people and authorization (drills: load_drills.py).

A mixin of the profile loader (load.py): it reports problems through the same loader and
checks references against what load.py read first (``flag_ids``, ``has_dependencies``,
``both_health``).
"""

from __future__ import annotations

from typing import Any

from console.config.model import KINDS, Contact, EscalationLevel
from console.config.reader import _non_empty, _one_of, _Table, _within
from console.profile import checks
from console.profile.checks import unique, unknown
from console.profile.load_drills import DrillReader
from console.profile.model import (
    Action,
    Authorization,
    ChecklistItem,
    DatabaseChange,
    Issue,
    MatrixRow,
    MemoryBands,
    Remedy,
    Validation,
)
from console.profile.patterns import placeholders
from console.profile.vocabulary import (
    ACTION_KINDS,
    CHECK_KINDS,
    EVIDENCE,
    FACT_NEEDS,
    FACTS,
    FIX_PLACEHOLDERS,
    NUMERIC_SIGNALS,
    SEVERITIES,
    SIGNALS,
)

# Keys only one kind of action or validation takes: said plainly when written on another.
ACTION_KEYS = {
    "flags": ("turn_off", "others"),
    "code": ("commit_message",),
    "database": ("table", "columns", "indexes", "rollback_script", "migration_script", "migration", "requires_off"),
    "combined": ("combines",),
}
CHANGE_KEYS = ("target", "target_s", "data_loss", "reversible")  # every action but advice
CHECK_KEYS = {
    "response_time": ("below_s",),
    "memory": ("below_mb",),
    "errors": ("window_lines", "max_error_lines"),
}
DATABASE_PLACEHOLDERS = ("table", "columns", "manual_sql")


class RulesReader(DrillReader):
    flag_ids: tuple[str, ...] = ()
    has_dependencies = False
    both_health = False

    def rules(self, root: _Table) -> dict[str, Any] | None:
        """Every table after the service's own parts, as Profile's keyword arguments."""
        memory = self._memory(root)
        actions = self._actions(root)
        self.action_ids = tuple(a.id for a in actions)
        self.rollback_ids = tuple(a.id for a in actions if a.kind != "advice")
        self.has_database = any(a.kind == "database" for a in actions)
        matrix = self._matrix(root)
        validations = self._validations(root)
        checklist = self._checklist(root, tuple(v.id for v in validations))
        issues = self._troubleshooting(root)
        contacts, escalation = self._people(root)
        authorization, levels, note = self._authorization(root)
        scenarios, directory = self._drills(root)
        if memory is None:
            return None
        return dict(
            memory=memory,
            matrix=matrix,
            actions=actions,
            validations=validations,
            troubleshooting=issues,
            checklist=checklist,
            contacts=contacts,
            escalation=escalation,
            authorization=authorization,
            emergency_levels=levels,
            authorization_note=note,
            scenarios=scenarios,
            drill_directory=directory,
        )

    def _memory(self, root: _Table) -> MemoryBands | None:
        t = checks.required_table(root, "memory", "ok_below_mb and warn_below_mb")
        if t is None:
            return None
        ok = t.get("ok_below_mb", float, check=_within(0, 10_000_000, " MB", low_open=True))
        warn = t.get("warn_below_mb", float, check=_within(0, 10_000_000, " MB", low_open=True))
        if ok is not None and warn is not None and warn <= ok:
            t.problem("warn_below_mb", f"must be above ok_below_mb ({ok:g}): ok < warn < high")
        t.finish()
        return None if ok is None or warn is None else MemoryBands(ok, warn)

    def _matrix(self, root: _Table) -> tuple[MatrixRow, ...]:
        rows = root.tables("matrix")
        if not rows:
            root.problem("matrix", "the decision matrix is empty: add [[matrix]] rows (symptom, severity, action)")
            return ()
        out = []
        for t in rows:
            signal = t.get("signal", str, None, _one_of(tuple(SIGNALS)))
            above = t.get("above", float, None, _within(0, 1e9))
            if signal in NUMERIC_SIGNALS and "above" not in t.data:
                t.problem("above", f"signal {signal!r} needs a threshold: above = …")
            elif signal and signal not in NUMERIC_SIGNALS and "above" in t.data:
                t.problem("above", f"signal {signal!r} is true or false: it takes no threshold")
            elif signal is None and "above" in t.data and "signal" not in t.data:
                t.problem("above", "a threshold needs a signal (rows without one are declared by a person)")
            action = t.get("action", str)
            if action is not None and action not in self.action_ids:
                t.problem("action", unknown(action, "an action", self.action_ids))
            out.append(
                MatrixRow(
                    symptom=t.get("symptom", str, check=_non_empty) or "",
                    severity=t.get("severity", str, check=_one_of(SEVERITIES)) or "",
                    action=action or "",
                    timeline=t.get("timeline", str, ""),
                    signal=signal,
                    above=above,
                    advice=t.get("advice", str, None),
                )
            )
            t.finish()
        unique(rows, out, "symptom")
        return tuple(out)

    # --- actions ----------------------------------------------------------------------------------

    def _actions(self, root: _Table) -> tuple[Action, ...]:
        tables = root.tables("actions")
        if not tables:
            root.problem("actions", "no action is defined: add [[actions]] (a quick rollback at least)")
            return ()
        out = [self._action(t) for t in tables]
        unique(tables, out, "id")
        ids = [a.id for a in out]
        kinds = {a.id: a.kind for a in out}
        for t, a in zip(tables, out, strict=True):
            for other in a.combines:
                if other == a.id:
                    t.problem("combines", "an action cannot combine itself")
                elif other not in kinds:
                    t.problem("combines", unknown(other, "an action", ids))
                elif kinds[other] in ("combined", "advice"):
                    t.problem("combines", f'{other!r} is an action of kind = "{kinds[other]}": combine rollbacks')
        for t in tables:
            t.finish()
        return tuple(out)

    def _action(self, t: _Table) -> Action:
        kind = t.get("kind", str, check=_one_of(tuple(ACTION_KINDS))) or ""
        title = t.get("title", str, check=_non_empty) or ""
        if not kind:  # the kind's problem says it all: what else is required depends on it
            t.used.update(t.data)
        changes = kind not in ("advice", "")
        a = dict(
            id=t.get("id", str, check=checks.id_check()) or "",
            kind=kind,
            title=title,
            short_title=t.get("short_title", str, title, _non_empty),
            notes=tuple(t.get("notes", list, [], checks.names) or ()),
        )
        if changes:
            a.update(
                target=t.get("target", str, check=_non_empty) or "",
                target_s=t.get("target_s", float, check=_within(0, 86400, " s", low_open=True)),
                data_loss=t.get("data_loss", str, ""),
                reversible=t.get("reversible", str, ""),
            )
        if kind == "flags":
            a.update(
                turn_off=self._flag_list(t, "turn_off", required=True),
                others=t.get("others", str, "unchanged", _one_of(("unchanged", "on"))),
            )
        elif kind == "code":
            a["commit_message"] = t.get("commit_message", str, check=_non_empty)
        elif kind == "database":
            a["database"] = DatabaseChange(
                table=t.get("table", str, check=_non_empty) or "",
                columns=tuple(t.get("columns", list, check=_names_required) or ()),
                indexes=tuple(t.get("indexes", list, [], checks.names) or ()),
                rollback_script=t.get("rollback_script", str, check=_non_empty) or "",
                migration_script=t.get("migration_script", str, None),
                migration=t.get("migration", str, ""),
                requires_off=self._flag_list(t, "requires_off"),
            )
        elif kind == "combined":
            combines = t.get("combines", list, check=checks.names) or []
            if len(combines) < 2 and "combines" in t.data:
                t.problem("combines", "a combined action runs two or more actions, in order")
            a["combines"] = tuple(combines)
        for other, keys in ACTION_KEYS.items():
            for key in keys:
                if key in t.data and other != kind:
                    t.used.add(key)  # with a wrong kind, the kind's problem says it all
                    if kind:
                        t.problem(key, f'`{key}` is for kind = "{other}" actions; this one is kind = "{kind}"')
        if not changes:
            for key in CHANGE_KEYS:
                if key in t.data:
                    t.used.add(key)
                    t.problem(key, "an advice action changes nothing: it has no target, data loss or reversibility")
        return Action(**a)  # type: ignore[arg-type]

    def _flag_list(self, t: _Table, key: str, required: bool = False) -> tuple[str, ...]:
        values = (t.get(key, list, check=checks.names) if required else t.get(key, list, [], checks.names)) or []
        for flag in values:
            if flag not in self.flag_ids:
                t.problem(key, unknown(flag, "a flag", self.flag_ids))
        if required and key in t.data and not values:
            t.problem(key, "names no flag: list the flags this action turns off")
        return tuple(values)

    # --- validations, checklist -------------------------------------------------------------------

    def _validations(self, root: _Table) -> tuple[Validation, ...]:
        tables = root.tables("validations")
        if not tables:
            root.problem("validations", 'no validation is defined: add [[validations]] (check = "health", …)')
            return ()
        out = []
        for t in tables:
            check = t.get("check", str, check=_one_of(tuple(CHECK_KINDS))) or ""
            v = dict(
                id=t.get("id", str, check=checks.id_check()) or "",
                title=t.get("title", str, check=_non_empty),
                check=check,
            )
            if check == "response_time":
                v["below_s"] = t.get("below_s", float, check=_within(0, 3600, " s", low_open=True))
            elif check == "memory":
                v["below_mb"] = t.get("below_mb", float, check=_within(0, 10_000_000, " MB", low_open=True))
            elif check == "errors":
                v["window_lines"] = t.get("window_lines", int, 100, _within(1, 100_000, " lines"))
                v["max_error_lines"] = t.get("max_error_lines", int, 0, _within(0, 100_000, " lines"))
            for other, keys in CHECK_KEYS.items():
                for key in keys:
                    if key in t.data and other != check:
                        t.used.add(key)
                        if check:
                            t.problem(key, f'`{key}` is a threshold of check = "{other}", not of "{check}"')
            t.finish()
            out.append(Validation(**v))  # type: ignore[arg-type]
        unique(tables, out, "id")
        return tuple(out)

    def _checklist(self, root: _Table, validations: tuple[str, ...]) -> tuple[ChecklistItem, ...]:
        tables = root.tables("checklist") or []
        if not tables:
            root.problem("checklist", "the post-rollback checklist is empty: add [[checklist]] items (id, text)")
        out = []
        for t in tables:
            validation = t.get("validation", str, None)
            if validation is not None and validation not in validations:
                t.problem("validation", unknown(validation, "a validation", validations))
            evidence = t.get("evidence", str, None, _one_of(tuple(EVIDENCE)))
            if validation and evidence:
                t.problem("evidence", "an item is ticked by a validation or by evidence, not both")
            out.append(
                ChecklistItem(
                    t.get("id", str, check=checks.id_check()) or "",
                    t.get("text", str, check=_non_empty) or "",
                    validation,
                    evidence,
                )
            )
            t.finish()
        unique(tables, out, "id")
        return tuple(out)

    # --- troubleshooting -------------------------------------------------------------------------

    def _troubleshooting(self, root: _Table) -> tuple[Issue, ...]:
        tables = root.tables("troubleshooting") or []
        out = []
        for t in tables:
            applies = t.get("applies", list, check=checks.names) or []
            for fact in applies:
                if fact not in FACTS:
                    t.problem("applies", unknown(fact, "a fact", tuple(FACTS)))
                elif fact in FACT_NEEDS and not self._has(fact):
                    t.problem("applies", f"{fact!r} needs {FACT_NEEDS[fact]}, and this profile has none")
            if "applies" in t.data and not applies:
                t.problem("applies", "names no fact: when does this issue apply?")
            fix = tuple(t.get("fix", list, check=checks.names) or ())
            self._commands(t, "fix", fix)
            remedy = None
            rt = t.table("remedy")
            if rt:
                alternatives = rt.get("alternatives", list, check=_command_lists) or []
                for i, commands in enumerate(alternatives):
                    self._commands(rt, "alternatives", commands, at=i)
                remedy = Remedy(rt.get("title", str, check=_non_empty) or "", tuple(tuple(c) for c in alternatives))
                rt.finish()
            out.append(
                Issue(
                    id=t.get("id", str, check=checks.id_check()) or "",
                    number=t.get("number", int, check=_within(1, 99)) or 0,
                    title=t.get("title", str, check=_non_empty) or "",
                    problem=t.get("problem", str, ""),
                    applies=tuple(applies),
                    fix=fix,
                    remedy=remedy,
                )
            )
            t.finish()
        unique(tables, out, "id")
        unique(tables, out, "number")
        return tuple(out)

    def _has(self, fact: str) -> bool:
        return {
            "partial_flag_mismatch": self.has_dependencies,
            "db_rollback_failed": self.has_database,
            "health_disagrees": self.both_health,
        }[fact]

    def _commands(self, t: _Table, key: str, lines: tuple[str, ...] | list[str], at: int | None = None) -> None:
        for i, line in enumerate(lines):
            where = (*t.path, key, i if at is None else at)
            for alternatives, _quoted in placeholders(line):
                for name in alternatives:
                    if name not in FIX_PLACEHOLDERS:
                        hint = " (for the shell, write $VAR, not ${VAR})" if name.isupper() else ""
                        self.problem(where, unknown(name, "a placeholder", tuple(FIX_PLACEHOLDERS)) + hint)
                    elif name in DATABASE_PLACEHOLDERS and not self.has_database:
                        self.problem(
                            where, f'{{{name}}} needs an action of kind = "database", and this profile has none'
                        )

    # --- people ----------------------------------------------------------------------------------

    def _people(self, root: _Table) -> tuple[tuple[Contact, ...], tuple[EscalationLevel, ...]]:
        contacts = []
        for t in root.tables("contacts") or []:
            contacts.append(
                Contact(
                    t.get("role", str, check=_non_empty) or "",
                    t.get("name", str, check=_non_empty) or "",
                    t.get("contact", str, ""),
                    t.get("availability", str, ""),
                )
            )
            t.finish()
        roles = [c.role for c in contacts]
        levels = []
        tables = root.tables("escalation") or []
        for t in tables:
            names = t.get("contacts", list, [], checks.names) or []
            for role in names:
                if role not in roles:
                    t.problem("contacts", unknown(role, "a role", roles) + " (roles are [[contacts]])")
            levels.append(
                EscalationLevel(
                    t.get("level", int, check=_within(1, 9)) or 0,
                    t.get("description", str, check=_non_empty) or "",
                    tuple(names),
                )
            )
            t.finish()
        unique(tables, levels, "level")
        return tuple(contacts), tuple(levels)

    def _authorization(self, root: _Table) -> tuple[tuple[Authorization, ...], tuple[str, ...], str]:
        t = root.table("authorization")
        if t is None:
            return (), (), ""
        levels = tuple(t.get("emergency_levels", list, [], checks.names) or ())
        note = t.get("note", str, "")
        out = []
        for kind in KINDS:
            kt = t.table(kind)
            if kt is None:
                t.problem(kind, f"say who authorizes a rollback in {kind}: [authorization.{kind}]")
                continue
            out.append(
                Authorization(
                    kind,
                    kt.get("approval", str, check=_one_of(("none", "required"))) or "",
                    kt.get("approver", str, ""),
                )
            )
            kt.finish()
        t.finish()
        return tuple(out), levels, note


def _names_required(v: list[Any]) -> str | None:
    return checks.names(v) or (None if v else "needs at least one name")


def _command_lists(v: list[Any]) -> str | None:
    for i, item in enumerate(v):
        if not isinstance(item, list) or not item or checks.names(item):
            return f'item #{i + 1} must be a list of commands, like ["{{reload_command}}", "{{restart_command}}"]'
    return None if v else "needs at least one list of commands"
