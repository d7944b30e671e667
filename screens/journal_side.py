"""The console's side of the journal: secrets and the journal opened off the event loop,
which runs belong to this console (a drill's own), the interrupted run offered at start-up
and the watch on requests and rollbacks in effect; mixed into the app (screens/app.py)."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.journal import Journal, RunSummary
    from console.journal.index import RunRow
    from screens.app import RollbackConsole

    _App = RollbackConsole
else:
    _App = object

# The journal's first look (an interrupted run to offer, each panel's requests and rollback in
# effect) waits for the first probe rounds to be drawn, at most this long after the first paint.
JOURNAL_LOOK_WAIT_S = 0.5


class JournalSide(_App):
    @functools.cached_property
    def secrets(self) -> list[str]:
        """The config's secrets, resolved once: each secret file is read in a thread within a
        deadline, which the event loop should not wait for (see ``journal_ready``)."""
        from console.journal.redact import known_secrets

        return known_secrets(self.config)

    @functools.cached_property
    def journal(self) -> Journal:
        # Loaded here, not at start-up: made first in a thread after the first paint.
        from console.journal import Journal

        return Journal(self.config.journal_path, secrets=self.secrets, who=self.who)

    async def journal_ready(self) -> Journal:
        """The journal, its secrets resolved off the event loop when that is still to do:
        at start-up the screen keeps drawing the first probe rounds meanwhile."""
        if "journal" not in self.__dict__:
            await asyncio.to_thread(lambda: self.journal)
        return self.journal

    def redact(self, text: str) -> str:
        """Remote text with the config's secrets (and secret-looking values) masked, for the screen."""
        return self.journal.redactor.text(text)

    def of_this_console(self, run: RunSummary | RunRow) -> bool:
        """Live: every real run. A drill: only its own runs — drills share one journal, and an
        earlier drill's rollback (or its interrupted run) belongs to a simulation long gone."""
        from console.engine.standing import started_since

        if not self.is_drill:
            return not run.drill
        return run.drill and started_since(run, self.drill_started)

    def read_drill_start(self, journal: Journal) -> None:
        """A console opened on a drill's config (not by `drill`): the drill began when its
        drill_started record says, not when this console opened — its runs before then are
        its own too. Read once; in a thread (it reads the journal)."""
        if not self.config.drill or self.drill or self._drill_start_read:
            return
        self._drill_start_read = True
        from console.engine.standing import drill_start

        since = drill_start(journal, self.config.path)
        if since is not None:
            self.drill_started = since

    def _look_at_journal(self) -> None:
        if not self._journal_look_due:
            return
        self._journal_look_due = False
        self.check_interrupted()
        self._watch_standing()

    def _watch_standing(self) -> None:
        from screens.standing import StandingWatcher

        self._standing = StandingWatcher(self)
        self._standing.start()

    def standing_changed(self) -> None:
        """This console changed the journal (a request, a decision, a run): look again now."""
        if self._standing is not None:
            self._standing.refresh(force=True)

    def check_interrupted(self) -> None:
        """A run cut off by a crash is offered for resume or undo at start-up."""
        # The method, not a coroutine: a worker the closing app never starts leaves nothing unawaited.
        self.run_worker(self._check_interrupted, group="interrupted", exit_on_error=False)

    async def _check_interrupted(self) -> None:
        from screens.modals import InterruptedRun

        try:  # off the event loop: a first look at a big journal reads it all
            journal = await self.journal_ready()
            await asyncio.to_thread(self.read_drill_start, journal)
            interrupted = [r for r in await journal.interrupted_async(drills=self.is_drill) if self.of_this_console(r)]
        except Exception as exc:  # an unreadable journal is reported, not fatal
            self.notify(f"cannot read the journal: {exc}", severity="error", timeout=15)
            return
        if not interrupted:
            return
        run = interrupted[-1]
        done = ", ".join(run.step_title(s) for s in run.progress()) or "nothing"
        summary = (
            f"run {run.run_id}: {run.title} on {run.env}, started by {run.operator} "
            f"{run.started_at:%Y-%m-%d %H:%M UTC}\n{run.outcome_text()}; steps done: {done}"
        )

        def chosen(choice: str | None) -> None:
            from console.engine.session import RunRefused
            from screens.run_screen import RunScreen

            if choice in ("resume", "undo"):
                try:
                    again = self.engine.again(run, undo=choice == "undo")
                except RunRefused as exc:
                    self.notify(str(exc), severity="error", timeout=15)
                    return
                self.start_run(RunScreen(again), replace=False)

        self.push_screen(InterruptedRun(summary), chosen)
