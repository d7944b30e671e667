"""The command palette (ctrl+p): every action of the console, searchable.

Per-environment commands come from ``PER_ENVIRONMENT``: one line each, for every
environment in the config.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from screens.app import RollbackConsole

# (title, app action taking the environment's name, help). "{env}" is filled in.
PER_ENVIRONMENT = (
    ("Rollback", "rollback", "rollback wizard for {env}: assess → plan → authorize → run → validate → checklist"),
    ("Open", "open_environment", "focused view of {env}: latency, log, process, matrix, hosts, troubleshooting"),
    ("Restore", "restore", "put back what the latest rollback on {env} changed: preview → authorize → confirm"),
)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[], object]


def console_commands(app: RollbackConsole) -> Iterator[Command]:
    """What the palette offers right now: only what the console would do (watch mode acts on nothing)."""

    def action(name: str, *args: object) -> Callable[[], object]:
        return functools.partial(getattr(app, f"action_{name}"), *args)

    for env in app.live:
        for title, name, help_text in PER_ENVIRONMENT:
            if app.allowed(name):
                yield Command(f"{title} {env}", help_text.format(env=env), action(name, env))
    if app.allowed("requests"):
        yield Command(
            "Approval requests",
            "production requests waiting for approval: approve, reject, withdraw, start",
            action("requests"),
        )
    yield Command("History", "the runbook's Rollback History; Enter opens a run's incident report", action("history"))
    if app.allowed("checklist"):
        yield Command("Checklist", "post-rollback checklist of the latest run", action("checklist"))
    yield Command("Incident report", "incident report of the latest run", action("report"))
    if app.allowed("escalation"):
        yield Command("Escalate", "contacts and the four escalation levels; notify a level", action("escalation"))
    yield Command("Watch the active run", "follow the rollback running now (read-only)", action("watch"))
    yield Command("Drills", "rehearsal scenarios and how to start one", action("drills"))
    if app.drill is not None:
        yield Command("Drill briefing", "the drill's briefing again", action("drill_briefing"))
        yield Command("End the drill", "score it against the runbook and show the scorecard", action("end_drill"))
    for theme in ("dark", "light", "ansi"):
        yield Command(f"Theme {theme}", f"switch to the {theme} theme", action("set_theme", theme))
    yield Command("Keys", "every key of this screen (F1)", action("keys"))
    yield Command("Quit", "leave the console (asks first while a rollback is active)", action("request_quit"))


class ConsoleCommands(Provider):
    """Textual's command provider over ``console_commands``."""

    def _commands(self) -> list[Command]:
        return list(console_commands(self.app))  # type: ignore[arg-type]

    async def discover(self) -> Hits:
        for c in self._commands():
            yield DiscoveryHit(c.name, c.run, help=c.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for c in self._commands():
            score = max(matcher.match(c.name), matcher.match(f"{c.name} {c.help}") * 0.5)
            if score > 0:
                yield Hit(score, matcher.highlight(c.name), c.run, help=c.help)
