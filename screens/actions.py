"""What the console's keys and commands open: history, escalation, the checklist and report,
the run being followed, drills, an environment, the rollback wizard, requests; mixed into
the app (screens/app.py), where the bindings are."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.screen import Screen

if TYPE_CHECKING:
    from screens.app import RollbackConsole

    _App = RollbackConsole
else:
    _App = object


class ConsoleActions(_App):
    def _push_kept(self, name: str, make: Callable[[], Screen]) -> None:
        """Screens opened often are built once and kept: reopening them is instant."""
        if not self.is_screen_installed(name):
            self.install_screen(make(), name)
        if self.get_screen(name) not in self.screen_stack:
            self.push_screen(name)

    def action_history(self) -> None:
        from screens.history import HistoryScreen

        self._push_kept("history", HistoryScreen)

    def action_escalation(self) -> None:
        from screens.escalation import EscalationScreen

        self._push_kept("escalation", EscalationScreen)

    async def _run_for_records(self, what: str) -> str | None:
        run_id = self.last_run or await self._latest_run()
        if run_id is None:
            self.notify(
                f"No rollback recorded yet: {what} follows a rollback (r on an environment starts one).",
                severity="warning",
            )
        return run_id

    async def action_checklist(self) -> None:
        from screens.checklist import ChecklistScreen

        run_id = await self._run_for_records("the checklist")
        if run_id is not None:
            self.push_screen(ChecklistScreen(run_id))

    async def action_report(self) -> None:
        from screens.history import ReportScreen

        run_id = await self._run_for_records("the incident report")
        if run_id is not None:
            self.push_screen(ReportScreen(run_id))

    def action_watch(self) -> None:
        """This console's run if it has one (running or just finished); else follow the journal."""
        from screens.watch import WatchScreen

        run = self.run_screen
        if run is not None:
            if run in self.screen_stack:
                while self.screen is not run and len(self.screen_stack) > 1:
                    self.pop_screen()
            else:
                self.push_screen(run)
            return
        if not isinstance(self.screen, WatchScreen):
            self.push_screen(WatchScreen())

    def action_drills(self) -> None:
        from console.runbook.drills import scenarios
        from screens.modals import TextModal

        lines = [
            "A drill rehearses a rollback on the simulator, scored against the runbook. Start one from a shell",
            "(it opens its own console in drill mode):",
            "",
        ]
        try:
            for sc in scenarios().values():
                lines.append(f"  rollback-console drill {sc.id:<13} {sc.title} → {sc.expected_action}")
        except Exception as exc:  # a broken scenario file must not break the palette
            lines.append(f"  (cannot list the scenarios: {exc})")
        lines += ["", "  rollback-console drill              a random one, kept secret until the scorecard"]
        self.push_screen(TextModal("Drills", "\n".join(lines)))

    def action_drill_briefing(self) -> None:
        from screens.modals import TextModal

        if self.drill is not None:
            self.push_screen(TextModal("Drill briefing", self.drill.briefing))  # type: ignore[attr-defined]

    def action_open_environment(self, environment: str) -> None:
        from screens.environment import EnvironmentScreen

        self.push_screen(EnvironmentScreen(self.live[environment]))

    async def _latest_run(self) -> str | None:
        runs = (await self.journal.page_async(drills=self.is_drill, limit=1)).rows
        return runs[-1].run_id if runs and self.of_this_console(runs[-1]) else None  # type: ignore[attr-defined]

    def action_rollback(
        self, environment: str | None = None, *, restores: str | None = None, restore: bool = False
    ) -> None:
        if self.read_only:
            self.notify("Watch mode is read-only.", severity="warning")
            return
        run = self.run_screen
        if run is not None and run.running:
            self.notify(
                f"{run.describe()}: one rollback at a time in a console. Press w to follow it.",
                severity="warning",
                timeout=10,
            )
            return
        from screens.wizard import RollbackWizard

        if run is not None:  # the finished run's screen goes: a new run takes its place
            while run in self.screen_stack and len(self.screen_stack) > 1:
                self.pop_screen()
        name = environment or next(iter(self.live))
        self.push_screen(RollbackWizard(self.live[name], restore=restore, restores=restores))

    def action_restore(self, environment: str, run_id: str | None = None) -> None:
        """Restore what a rollback changed (``run_id``; None: the latest on the environment):
        the wizard's preview → authorize → confirm path."""
        self.action_rollback(environment, restores=run_id, restore=True)

    def action_requests(self, environment: str | None = None) -> None:
        from screens.approvals import RequestsScreen

        self.push_screen(RequestsScreen(environment))

    async def action_end_drill(self) -> None:
        """Score the drill from the journal, show the scorecard, then leave."""
        from console.runbook.drills import finish_drill
        from screens.modals import TextModal

        if self.drill is None or self.drill_scored:
            return
        self.drill_scored = True  # one scorecard, however often x is pressed meanwhile
        card = await asyncio.to_thread(
            finish_drill,
            self.drill,  # type: ignore[arg-type]
            self.journal,
            self.drill_started,
            time.time(),
            self.config,
        )
        if card is None:  # scored already (by another face): nothing more to show
            self.exit()
            return
        self.push_screen(TextModal("Drill scorecard", card.text(), "Finish (Enter)"), lambda _: self.exit())
