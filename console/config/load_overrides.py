"""The config's runbook tables, each an override of the environment's profile: the decision
matrix, the checklist, contacts and escalation; and its notifications and approvals. Read by
the config's loader (load.py), with its table reader: every problem with file, line and key."""

from __future__ import annotations

from collections.abc import Iterable

from console.config import defaults
from console.config.model import (
    SEVERITIES,
    SIGNALS,
    Approvals,
    ChecklistItem,
    Contact,
    Environment,
    EscalationLevel,
    MatrixRow,
    Notifications,
)
from console.config.reader import _did_you_mean, _non_empty, _one_of, _Table, _within


class OverridesReader:
    """Mixed into the config's loader, which sets ``profile`` (the config's top-level one)."""

    profile: str | None

    def _matrix(self, root: _Table, environments: dict[str, Environment]) -> tuple[MatrixRow, ...]:
        """The config's own decision matrix; none (the usual case): each environment's profile's."""
        rows = root.tables("decision_matrix")
        if rows is None:
            return ()
        actions = _profile_actions(environments.values())
        out = []
        for t in rows:
            signal = t.get("signal", str, None, _one_of(SIGNALS))
            above = t.get("above", float, None, _within(0, 1e9))
            if (
                signal
                and signal != "missing_data"
                and signal != "unhealthy"
                and above is None
                and "above" not in t.data
            ):
                t.problem("above", f"signal {signal!r} needs a threshold: above = …")
            out.append(
                MatrixRow(
                    symptom=t.get("symptom", str, check=_non_empty),
                    severity=t.get("severity", str, check=_one_of(SEVERITIES)),
                    action=t.get("action", str, check=_one_of(actions) if actions else _non_empty),
                    timeline=t.get("timeline", str, ""),
                    signal=signal,
                    above=above,
                    advice=t.get("advice", str, None),
                )
            )
            t.finish()
        return tuple(out)

    def _checklist(self, root: _Table) -> tuple[ChecklistItem, ...]:
        items = root.tables("checklist")
        if items is None:
            return ()  # the environment's profile's (console.runbook.checklist.checklist_of)
        out = []
        for t in items:
            out.append(
                ChecklistItem(
                    id=t.get("id", str, check=_non_empty),
                    text=t.get("text", str, check=_non_empty),
                    check=t.get("check", str, None, _one_of(defaults.CHECKS)),
                )
            )
            t.finish()
        return tuple(out)

    def _contacts(
        self, root: _Table, environments: dict[str, Environment]
    ) -> tuple[tuple[Contact, ...], tuple[EscalationLevel, ...]]:
        """The config's own contacts and escalation; none (the usual case): the profile's."""
        contacts_t = root.tables("contacts")
        contacts: tuple[Contact, ...] | list[Contact] = ()
        if contacts_t is not None:
            contacts = []
            for t in contacts_t:
                contacts.append(
                    Contact(
                        role=t.get("role", str, check=_non_empty),
                        name=t.get("name", str, check=_non_empty),
                        contact=t.get("contact", str, ""),
                        availability=t.get("availability", str, ""),
                    )
                )
                t.finish()
            contacts = tuple(contacts)
        levels_t = root.tables("escalation")
        levels: tuple[EscalationLevel, ...] | list[EscalationLevel] = ()
        if levels_t is not None:
            levels = []
            profiles = {e.profile for e in environments.values()} or {
                self.profile
            }  # an environment in error: the config's
            roles = {c.role for c in contacts} if contacts_t is not None else _profile_roles(profiles)
            for t in levels_t:
                names = t.get("contacts", list, [])
                for role in names or []:
                    if role not in roles and (roles or contacts_t is not None):  # no profile read: not judged
                        source = "[[contacts]]" if contacts_t is not None else "the profile's contacts"
                        known = ", ".join(sorted(roles)) or "none"
                        hint = _did_you_mean(str(role), sorted(roles))
                        t.problem("contacts", f"{role!r} is not a role in {source}{hint}; roles: {known}")
                levels.append(
                    EscalationLevel(
                        level=t.get("level", int, check=lambda v: None if 1 <= v <= 9 else "level must be 1-9"),
                        description=t.get("description", str, check=_non_empty),
                        contacts=tuple(names or ()),
                    )
                )
                t.finish()
            levels = tuple(levels)
        return tuple(contacts), tuple(levels)

    def _notifications(self, root: _Table) -> Notifications:
        t = root.table("notifications")
        if t is None:
            return Notifications()
        n = Notifications(
            webhook=t.secret("webhook", required=False),
            timeout_s=t.get("timeout_s", float, 5.0, _within(0, 120, " s", low_open=True)),
        )
        t.finish()
        return n

    def _approvals(self, root: _Table) -> Approvals:
        t = root.table("approvals")
        if t is None:
            return Approvals()
        a = Approvals(expire_after_s=t.get("expire_after_s", float, 900.0, _within(1, 7 * 24 * 3600, " s")))
        t.finish()
        return a


def _profile_actions(environments: Iterable[Environment]) -> tuple[str, ...]:
    """Every action id the environments' profiles have, in their order: what a
    [[decision_matrix]] row may name. () when a profile cannot be read (config
    validate names that problem; the row is not judged against a profile it cannot see)."""
    from console.profile import ProfileError, profile_at

    out: dict[str, None] = {}
    try:
        for path in dict.fromkeys(e.profile for e in environments):
            out.update(dict.fromkeys(a.id for a in profile_at(path).actions))
    except ProfileError:
        return ()
    return tuple(out)


def _profile_roles(profiles: Iterable[str | None]) -> set[str]:
    """The contact roles of these profiles (None: the default): what an [[escalation]] level
    may name when the config lists no contacts of its own."""
    from console.profile import ProfileError, profile_at

    try:
        return {c.role for path in profiles for c in profile_at(path).contacts}
    except ProfileError:
        return set()
