"""The Rollback Console app: its keys, themes, start and end, and runs. Its probe feed
(screens/probing.py), its side of the journal (screens/journal_side.py) and what its keys
open (screens/actions.py) are mixed in."""

from __future__ import annotations

import asyncio
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
from console.runbook.matrix import DecisionMatrix

if TYPE_CHECKING:
    from collections.abc import Iterable

    from console.engine.session import Engine
    from console.engine.standing import Standing
    from console.runbook.drills import Scenario
    from screens.run_screen import RunScreen
    from screens.standing import StandingWatcher
from console.probes.worker import FrameReader, ProbeWorker
from screens.actions import ConsoleActions
from screens.commands import ConsoleCommands
from screens.journal_side import JOURNAL_LOOK_WAIT_S, JournalSide
from screens.probing import ProbeFeed
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


# The console's one-letter keys: off in forms and modals, where letters are text or answers.
LETTER_ACTIONS = frozenset({"request_quit", "history", "escalation", "checklist", "watch", "cycle_theme", "end_drill"})


class RollbackConsole(ProbeFeed, JournalSide, ConsoleActions, App[int]):
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

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from console.engine.session import Engine
            from console.plans import PLANS

            self._engine = Engine(self.config, prober=self.prober, who=self.who, plans=PLANS)
            self._engine.journal = self.journal
        return self._engine

    @property
    def is_drill(self) -> bool:
        return bool(self.drill) or self.config.drill

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

        # A stop signal that came before the app's loop ran had nothing to stop yet: it was
        # only remembered (console/cli/tui.py), and the console leaves now, as it opens.
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

    def _subtitle(self) -> str:
        now = datetime.fromtimestamp(self.clock(), UTC).strftime("%H:%M:%S UTC")
        mode = "WATCH (read-only)" if self.read_only else ("DRILL — rehearsal" if self.is_drill else "live")
        if self.drill is not None:
            elapsed = int(self.clock() - self.drill_started)
            mode += f" {elapsed // 60:02d}:{elapsed % 60:02d} (x ends it)"
        return f"{mode} · {self.who.user} · {now}"

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
