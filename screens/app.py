"""The Rollback Console app: one probe loop per environment, screens on top."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.driver import Driver
from textual.reactive import Reactive
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.widgets import Input

from console import collector
from console.config.model import Config
from console.journal.who import Who
from console.runbook.matrix import DecisionMatrix, matrix_of

if TYPE_CHECKING:
    from collections.abc import Iterable

    from console.engine.session import Engine
    from console.engine.standing import Standing
    from console.journal import Journal, RunSummary
    from console.journal.index import RunRow
    from console.probes.collect import Prober
    from console.runbook.drills import Scenario
    from screens.run_screen import RunScreen
    from screens.standing import StandingWatcher
from console.probes.worker import FrameReader, ProbeWorker
from screens.actions import ConsoleActions
from screens.commands import ConsoleCommands
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


def _is_text_field(widget: object) -> bool:
    """An Input or a TextArea. TextArea is looked up only if some screen loaded it: its
    import (the document model, syntax themes) is not worth paying at start-up to learn
    that no widget is one."""
    if isinstance(widget, Input):
        return True
    text_area = sys.modules.get("textual.widgets._text_area")
    return text_area is not None and isinstance(widget, text_area.TextArea)


# The journal's first look (an interrupted run to offer, each panel's requests and rollback in
# effect) waits for the first probe rounds to be drawn, at most this long after the first paint.
JOURNAL_LOOK_WAIT_S = 0.5

# The console's one-letter keys: off in forms and modals, where letters are text or answers.
LETTER_ACTIONS = frozenset({"request_quit", "history", "escalation", "checklist", "watch", "cycle_theme", "end_drill"})


class RollbackConsole(ConsoleActions, App[int]):
    TITLE = "Rollback Console"
    CSS_PATH = str(CSS_PATH)
    ENABLE_COMMAND_PALETTE = True
    # The subtitle carries a clock, set every second. Textual repaints the whole screen when
    # it changes; the headers watching it repaint their title line, which is all that changed.
    sub_title: Reactive[str] = Reactive("", compute=False, repaint=False)
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    # Everywhere, but in the footer only where there is room (the dashboard shows them all);
    # the key help (F1) lists every one.
    BINDINGS = [
        Binding("q", "request_quit", "Quit", id="app.quit"),
        Binding("x", "end_drill", "End drill", id="app.end_drill", show=False),  # the drill's header says x
        Binding("f1", "keys", "Keys", id="app.keys"),
        Binding("h", "history", "History", id="app.history", show=False),
        Binding("e", "escalation", "Escalate", id="app.escalation", show=False),
        Binding("c", "checklist", "Checklist", id="app.checklist", show=False),
        Binding("w", "watch", "Watch the active run", id="app.watch", show=False),
        Binding("t", "cycle_theme", "Theme (dark, light, ansi)", id="app.theme", show=False),
    ]

    def __init__(
        self,
        config: Config,
        *,
        watch_only: bool = False,
        probe: bool = True,
        clock: Callable[[], float] = time.time,
        theme: str | None = None,
        drill: Scenario | None = None,
        who: Who | None = None,
        drill_secret: bool = False,
        drill_started: float | None = None,
        probe_worker: ProbeWorker | None = None,
    ) -> None:
        """``probe_worker``: one already started (the CLI starts it before Textual loads);
        otherwise the console starts its own when probing. ``drill_started``: the moment the
        drill was journaled as started (its scorecard is found by it)."""
        super().__init__()
        self.config = config
        self.read_only = watch_only
        self.probing = probe and not watch_only
        self.clock = clock
        self.drill = drill  # in drill mode
        self.drill_started = time.time() if drill_started is None else drill_started
        self._drill_start_read = False  # read_drill_start has looked in the journal
        self.drill_scored = False
        self.drill_secret = drill_secret  # random drill: the trainee is not told which scenario
        self.live = {name: LiveEnvironment(env) for name, env in config.environments.items()}
        self._matrices: dict[str, DecisionMatrix] = {}
        self.env_updated: Signal[str] = Signal(self, "env-updated")
        self._worker = probe_worker if self.probing else None
        if probe_worker is not None and self._worker is None:
            probe_worker.close()
        self._frames = FrameReader()  # a fresh one per worker
        self._leaving = False  # unmounting: no probe worker is started again (not MessagePump._closing)
        self._waiting: dict[int, asyncio.Future[None]] = {}  # probe_now requests by id
        self._request_ids = itertools.count(1)
        self.who = who or Who.current()
        self._engine = None  # the rollback engine loads on first use: start-up stays light
        self.last_run: str | None = None
        self.run_screen: RunScreen | None = None  # this console's latest run (one at a time)
        self.standing: dict[str, Standing] = {}  # the journal's side of each environment (screens/approvals.py)
        self._standing: StandingWatcher | None = None
        self._journal_look_due = False  # the journal's first look waits for the first rounds
        self._runs_started = itertools.count(1)
        self.quitting = False
        for t in THEMES.values():
            self.register_theme(t)
        self._set_first_theme(pick_theme(theme))

    def _set_first_theme(self, name: str) -> None:
        """The theme before the stylesheet is first parsed. Setting ``theme`` here would have
        Textual parse the whole stylesheet once more as soon as it starts (its watcher
        reparses; ≈ 7 ms before the first paint); the watcher's other effects are done here."""
        refresh_filter = getattr(self, "_refresh_truecolor_filter", None)
        if refresh_filter is None:  # another Textual: the ordinary way
            self.theme = name
            return
        self.set_reactive(App.theme, name)
        self.stylesheet.set_variables(self.get_css_variables())
        dark = self.current_theme.dark
        classes = {c: False for c in self.classes if c.startswith("-theme-")}
        self.update_classes(
            {**classes, f"-theme-{name}": True, "-dark-mode": dark, "-light-mode": not dark}, update=False
        )
        refresh_filter(self.ansi_theme)

    @functools.cached_property
    def prober(self) -> Prober:
        """For the engine's own probes; the dashboard's loops run in the probe worker."""
        from console.probes.collect import Prober

        return Prober(self.config)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from console.engine.session import Engine
            from console.plans import PLANS

            self._engine = Engine(self.config, prober=self.prober, who=self.who, plans=PLANS)
            self._engine.journal = self.journal
        return self._engine

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

    @property
    def is_drill(self) -> bool:
        return bool(self.drill) or self.config.drill

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

    def get_driver_class(self) -> type[Driver]:
        from textual.drivers.linux_driver import LinuxDriver

        driver = super().get_driver_class()
        if driver is LinuxDriver:
            from screens.driver import TerminalDriver

            return TerminalDriver
        return driver

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Of Textual's own palette entries only maximize/minimize: themes, keys and quit are the
        console's own (ConsoleCommands), and a screenshot would write files where no one looks."""
        for command in super().get_system_commands(screen):
            if command.title in ("Maximize", "Minimize"):
                yield command

    def get_default_screen(self) -> Screen:
        """The dashboard (or, in watch mode, the run follower) is the base screen itself:
        no empty screen underneath to build first."""
        if self.read_only:
            from screens.watch import WatchScreen

            return WatchScreen()
        from screens.dashboard import DashboardScreen

        return DashboardScreen()

    def run(self, *args: object, **kwargs: object) -> int | None:
        """As Textual's, in the console's own process (tests use ``run_test``): what is loaded
        so far (modules, classes, the config) lives as long as the process, so it is moved out
        of the garbage collector's sight first. Otherwise the first full collection walks it
        all while the dashboard is being drawn (≈30 ms of CPU at start-up), and so does every
        later one. The youngest generation is collected less often too: the widgets built at
        start-up were scanned and promoted by a collection every 700 allocations."""
        collector.settle()
        return super().run(*args, **kwargs)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        from console import shutdown

        # A stop signal that came while starting raised its KeyboardInterrupt wherever the
        # process was; inside a finalizer (a __del__, a weakref callback) Python only prints
        # it, and the console would open and run on. The signal itself is remembered.
        if shutdown.received() is not None:
            self.exit()
            return
        self.set_class(self.is_drill, "-drill")
        self.sub_title = self._subtitle()
        self.set_interval(1.0, lambda: setattr(self, "sub_title", self._subtitle()))
        if self.read_only:
            return
        self._journal_look_due = True
        if self.probing:
            # Reading the journal (its modules, the secrets, the records) in threads competes
            # with drawing the first rounds for the GIL and the CPU; it goes first only if the
            # rounds are slow (an unreachable host: up to the probe timeout).
            self.call_after_refresh(self.set_timer, JOURNAL_LOOK_WAIT_S, self._look_at_journal)
        else:
            self.call_after_refresh(self._look_at_journal)
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

    def _subtitle(self) -> str:
        now = datetime.fromtimestamp(self.clock(), UTC).strftime("%H:%M:%S UTC")
        mode = "WATCH (read-only)" if self.read_only else ("DRILL — rehearsal" if self.is_drill else "live")
        if self.drill is not None:
            elapsed = int(self.clock() - self.drill_started)
            mode += f" {elapsed // 60:02d}:{elapsed % 60:02d} (x ends it)"
        return f"{mode} · {self.who.user} · {now}"

    # --- probing: one loop per environment, in the probe worker process -----------------
    def _start_probe_worker(self) -> None:
        if self._leaving:
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
                live.update(payload, self.matrix(name))
            else:
                live.probe_error = payload
            self.env_updated.publish(name)
            for request in served:
                future = self._waiting.pop(request, None)
                if future is not None and not future.done():
                    future.set_result(None)
        if self._journal_look_due and all(live.rounds or live.probe_error for live in self.live.values()):
            # After the refresh that runs the dashboard's drawing of these rounds, and the one that paints it.
            self.call_after_refresh(self.call_after_refresh, self._look_at_journal)

    def matrix(self, name: str) -> DecisionMatrix:
        """The decision matrix of an environment (the config's, else its profile's)."""
        if name not in self._matrices:
            self._matrices[name] = matrix_of(self.config, self.config.environment(name))
        return self._matrices[name]

    def publish(self, name: str) -> None:
        """Re-render an environment after a local change (e.g. declared symptoms)."""
        self.live[name].reevaluate(self.matrix(name))
        self.env_updated.publish(name)

    async def probe_now(self, name: str) -> None:
        """A fresh round for one environment, started after this call; returns when shown."""
        live = self.live[name]
        if self._worker is None:
            live.update(await self.prober.snapshot(live.env), self.matrix(name))
            self.env_updated.publish(name)
            return
        request = next(self._request_ids)
        future = self._waiting[request] = asyncio.get_running_loop().create_future()
        self._worker.probe_now(name, request)
        try:
            await asyncio.wait_for(future, self.config.thresholds.probe_timeout_s * 3 + 5)
        except TimeoutError:
            self._waiting.pop(request, None)

    # --- keys ---------------------------------------------------------------------------
    def in_form(self) -> bool:
        """Is the operator filling a form or answering a modal? Letters are text there."""
        screen = self.screen
        if isinstance(screen, ModalScreen) and not isinstance(screen, CommandPalette):
            return True
        return bool(getattr(screen, "FORM", False)) or _is_text_field(screen.focused)

    READ_ONLY_BLOCKED = frozenset({"escalation", "checklist", "rollback", "open_environment", "restore", "requests"})

    def allowed(self, action: str) -> bool:
        """May this console do ``action`` at all? Watch mode acts on nothing."""
        if self.read_only and action in self.READ_ONLY_BLOCKED:
            return False
        if action == "end_drill":
            return self.drill is not None
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.quitting:
            return False  # a key typed after quitting began does nothing
        if action in LETTER_ACTIONS and self.in_form():
            return False
        return self.allowed(action)

    def action_keys(self) -> None:
        """Every key of the current screen, those the footer has no room for too."""
        from screens.modals import KeysScreen, screen_keys

        if isinstance(self.screen, KeysScreen):
            return
        self.push_screen(KeysScreen(screen_keys(self, self.screen), str(self.screen.title or self.title)))

    # --- leaving --------------------------------------------------------------------------
    def exit(self, *args: object, **kwargs: object) -> None:
        self.quitting = True
        super().exit(*args, **kwargs)  # type: ignore[arg-type]

    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit: the same question as q."""
        self.action_request_quit()

    def action_request_quit(self) -> None:
        """Quit; while a rollback is active here, ask first: quitting cuts it off."""
        if self.quitting:
            return
        run = self.run_screen
        if run is None or not run.running:
            self._leave()
            return
        consequence = run.quit_consequence()
        from screens.modals import Choice

        def chosen(quit_: bool | None) -> None:
            if quit_:
                self._leave()

        self.push_screen(
            Choice("Quit while a rollback is active?", f"{run.describe()}. {consequence}", yes="Quit anyway (y)"),
            chosen,
        )

    def _leave(self) -> None:
        if self.drill is not None and not self.drill_scored:
            self.run_worker(self.action_end_drill)  # a drill ends with its scorecard, in the console
            return
        self.exit()

    # --- runs -----------------------------------------------------------------------------
    def start_run(self, screen: RunScreen, *, replace: bool) -> None:
        """Show a new run. Its screen is kept when left (the run goes on; w brings it back);
        the previous, finished run's screen goes."""
        previous = self.run_screen
        if previous is not None and previous not in self.screen_stack:  # action_rollback saw to that
            self.uninstall_screen(previous)
            self.call_later(previous.remove)
        name = f"run-{next(self._runs_started)}"
        self.install_screen(screen, name)
        self.run_screen = screen
        if replace:
            self.switch_screen(name)
        else:
            self.push_screen(name)

    def action_cycle_theme(self) -> None:
        names = list(THEMES)
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]

    def action_set_theme(self, name: str) -> None:
        self.theme = pick_theme(name)

    async def on_unmount(self) -> None:
        self._leaving = True
        self._stop_probe_worker()
        if self._engine is not None:
            await self._engine.close()
        if "prober" in self.__dict__:
            await self.prober.close()
