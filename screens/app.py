"""The Rollback Console app: one probe loop per environment, screens on top."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal

from console.config.model import Config
from console.journal import Journal, Who, known_secrets

if TYPE_CHECKING:
    from console.engine.session import Engine
    from console.probes.collect import Prober
from console.probes.worker import FrameReader, ProbeWorker
from screens.state import LiveEnvironment
from themes import CSS_PATH, DEFAULT, THEMES


def pick_theme(requested: str | None = None) -> str:
    """--theme, then $ROLLBACK_CONSOLE_THEME, then ANSI-only for 8/16-colour terminals."""
    name = requested or os.environ.get("ROLLBACK_CONSOLE_THEME")
    if name:
        return name if name in THEMES else f"rollback-{name}" if f"rollback-{name}" in THEMES else DEFAULT
    term = os.environ.get("TERM", "")
    if not os.environ.get("COLORTERM") and term in ("xterm", "linux", "vt100", "vt220", "screen", "ansi"):
        return "rollback-ansi"
    return DEFAULT


class RollbackConsole(App[int]):
    TITLE = "Rollback Console"
    CSS_PATH = str(CSS_PATH)
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("h", "history", "History", id="app.history"),
        Binding("e", "escalation", "Escalate", id="app.escalation"),
        Binding("c", "checklist", "Checklist", id="app.checklist"),
        Binding("w", "watch", "Active run", id="app.watch"),
        Binding("t", "cycle_theme", "Theme", id="app.theme", show=False),
        Binding("x", "end_drill", "End drill", id="app.end_drill"),
    ]

    def __init__(
        self,
        config: Config,
        *,
        watch_only: bool = False,
        probe: bool = True,
        clock: Callable[[], float] = time.time,
        theme: str | None = None,
        drill: object | None = None,
        who: Who | None = None,
        drill_secret: bool = False,
        probe_worker: ProbeWorker | None = None,
    ) -> None:
        """``probe_worker``: one already started (the CLI starts it before Textual loads);
        otherwise the console starts its own when probing."""
        super().__init__()
        self.config = config
        self.read_only = watch_only
        self.probing = probe and not watch_only
        self.clock = clock
        self.drill = drill  # a console.drills.Scenario in drill mode
        self.drill_started = time.time()
        self.drill_scored = False
        self.drill_secret = drill_secret  # random drill: the trainee is not told which scenario
        self.live = {name: LiveEnvironment(env) for name, env in config.environments.items()}
        self.env_updated: Signal[str] = Signal(self, "env-updated")
        self._worker = probe_worker if self.probing else None
        if probe_worker is not None and self._worker is None:
            probe_worker.close()
        self._frames = FrameReader()  # a fresh one per worker
        self._closing = False
        self._waiting: dict[int, asyncio.Future[None]] = {}  # probe_now requests by id
        self._request_ids = itertools.count(1)
        self.who = who or Who.current()
        self._engine = None  # the rollback engine loads on first use: start-up stays light
        self.last_run: str | None = None
        for t in THEMES.values():
            self.register_theme(t)
        self.theme = pick_theme(theme)

    @functools.cached_property
    def prober(self) -> Prober:
        """For the engine's own probes; the dashboard's loops run in the probe worker."""
        from console.probes.collect import Prober

        return Prober(self.config)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from console.engine.session import Engine

            self._engine = Engine(self.config, prober=self.prober, who=self.who)
            self._engine.journal = self.journal
        return self._engine

    @functools.cached_property
    def journal(self) -> Journal:
        return Journal(self.config.journal_path, secrets=known_secrets(self.config), who=self.who)

    def redact(self, text: str) -> str:
        """Remote text with the config's secrets (and secret-looking values) masked, for the screen."""
        return self.journal.redactor.text(text)

    @property
    def is_drill(self) -> bool:
        return bool(self.drill) or self.config.drill

    def get_default_screen(self) -> Screen:
        """The dashboard (or, in watch mode, the run follower) is the base screen itself:
        no empty screen underneath to build first."""
        if self.read_only:
            from screens.watch import WatchScreen

            return WatchScreen()
        from screens.dashboard import DashboardScreen

        return DashboardScreen()

    def on_mount(self) -> None:
        self.set_class(self.is_drill, "-drill")
        self.sub_title = self._subtitle()
        self.set_interval(1.0, lambda: setattr(self, "sub_title", self._subtitle()))
        if self.read_only:
            return
        self.call_after_refresh(self.check_interrupted)
        if self.drill is not None:
            from screens.modals import TextModal

            title = "DRILL — a rehearsal on the simulator" + ("" if self.drill_secret else f": {self.drill.title}")
            self.push_screen(
                TextModal(
                    title,
                    f"{self.drill.briefing}\n\nThe clock is running. When the "
                    "service is recovered and the checklist done, press x to end "
                    "the drill and see your scorecard.",
                    "Start (Enter)",
                )
            )
        if self.probing:
            self._start_probe_worker()

    def check_interrupted(self) -> None:
        """A run cut off by a crash is offered for resume or undo at start-up."""
        from screens.modals import InterruptedRun

        try:
            interrupted = self.journal.interrupted(drills=self.is_drill)
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
            from console.engine.session import authorization_of, request_of
            from screens.run_screen import RunScreen

            if choice in ("resume", "undo"):
                self.push_screen(
                    RunScreen(
                        request_of(run),
                        authorization_of(run),
                        title=run.title,
                        target_s=None,
                        resume=run,
                        undo=choice == "undo",
                    )
                )

        self.push_screen(InterruptedRun(summary), chosen)

    def _subtitle(self) -> str:
        now = datetime.fromtimestamp(self.clock(), UTC).strftime("%H:%M:%S UTC")
        mode = "WATCH (read-only)" if self.read_only else ("DRILL — rehearsal" if self.is_drill else "live")
        if self.drill is not None:
            elapsed = int(self.clock() - self.drill_started)
            mode += f" {elapsed // 60:02d}:{elapsed % 60:02d}"
        return f"{mode} · {self.who.user} · {now}"

    # --- probing: one loop per environment, in the probe worker process -----------------
    def _start_probe_worker(self) -> None:
        if self._closing:
            return
        if self._worker is None:
            try:
                self._worker = ProbeWorker.spawn(self.config)
            except OSError as exc:  # e.g. out of processes: say so, try again shortly
                self._probe_worker_lost(f"cannot start the probe worker: {exc}")
                return
        self._frames = FrameReader()
        asyncio.get_running_loop().add_reader(self._worker.out, self._probe_readable)

    def _stop_probe_worker(self) -> None:
        if self._worker is not None:
            asyncio.get_running_loop().remove_reader(self._worker.out)
            self._worker.close(timeout=1.0)
            self._worker = None
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)
        self._waiting.clear()

    def _probe_worker_lost(self, why: str) -> None:
        for name, live in self.live.items():
            live.probe_error = why
            self.env_updated.publish(name)
        self.set_timer(2.0, self._start_probe_worker)

    def _probe_readable(self) -> None:
        assert self._worker is not None
        data = self._worker.read()
        if data is None:
            return
        if not data:  # the worker has gone: say so, and start another
            self._stop_probe_worker()
            self._probe_worker_lost("probe worker stopped; restarting it")
            return
        for kind, name, payload, served in self._frames.feed(data):  # type: ignore[misc]
            live = self.live.get(name)
            if live is None:
                continue
            if kind == "snapshot":
                live.update(payload, self.config.decision_matrix)
            else:
                live.probe_error = payload
            self.env_updated.publish(name)
            for request in served:
                future = self._waiting.pop(request, None)
                if future is not None and not future.done():
                    future.set_result(None)

    def publish(self, name: str) -> None:
        """Re-render an environment after a local change (e.g. declared symptoms)."""
        self.live[name].reevaluate(self.config.decision_matrix)
        self.env_updated.publish(name)

    async def probe_now(self, name: str) -> None:
        """A fresh round for one environment, started after this call; returns when shown."""
        live = self.live[name]
        if self._worker is None:
            live.update(await self.prober.snapshot(live.env), self.config.decision_matrix)
            self.env_updated.publish(name)
            return
        request = next(self._request_ids)
        future = self._waiting[request] = asyncio.get_running_loop().create_future()
        self._worker.probe_now(name, request)
        try:
            await asyncio.wait_for(future, self.config.thresholds.probe_timeout_s * 3 + 5)
        except TimeoutError:
            self._waiting.pop(request, None)

    # --- actions ------------------------------------------------------------------------
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

    def action_checklist(self) -> None:
        from screens.checklist import ChecklistScreen

        run_id = self.last_run or self._latest_run()
        if run_id is None:
            self.notify("No rollback recorded yet: the checklist follows a rollback.", severity="warning")
            return
        self.push_screen(ChecklistScreen(run_id))

    def action_watch(self) -> None:
        from screens.watch import WatchScreen

        self.push_screen(WatchScreen())

    def _latest_run(self) -> str | None:
        runs = self.journal.runs(drills=self.is_drill)
        return runs[-1].run_id if runs else None

    def action_rollback(self, environment: str | None = None) -> None:
        if self.read_only:
            self.notify("Watch mode is read-only.", severity="warning")
            return
        from screens.wizard import RollbackWizard

        name = environment or next(iter(self.live))
        self.push_screen(RollbackWizard(self.live[name]))

    READ_ONLY_BLOCKED = frozenset({"escalation", "checklist", "rollback"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Watch mode offers nothing that acts: no rollback, no notifying, no ticking."""
        if self.read_only and action in self.READ_ONLY_BLOCKED:
            return False
        if action == "end_drill":
            return self.drill is not None
        return True

    def action_end_drill(self) -> None:
        """Score the drill from the journal, show the scorecard, then leave."""
        from console.drills import score
        from screens.modals import TextModal

        card = score(
            self.drill,
            self.journal,
            self.drill_started,
            time.time(),  # type: ignore[arg-type]
            checklist_total=len(self.config.checklist),
        )
        self.journal.append("drill_scored", env=self.drill.environment, data=card.as_dict())  # type: ignore[union-attr]
        self.drill_scored = True
        self.push_screen(TextModal("Drill scorecard", card.text(), "Finish (Enter)"), lambda _: self.exit())

    def action_cycle_theme(self) -> None:
        names = list(THEMES)
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]

    async def on_unmount(self) -> None:
        self._closing = True
        self._stop_probe_worker()
        if self._engine is not None:
            await self._engine.close()
        if "prober" in self.__dict__:
            await self.prober.close()
