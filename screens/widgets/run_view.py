"""A run as it happens: each step on each host with its timer, the validations, and the
streamed output. Fed by runner events (the wizard) or journal records (watch mode).

It shows one run only, named by its id, and every result with the time it was taken:
what another run (or an earlier moment of this one) showed never stays on screen.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections import deque
from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, RichLog, Static

from screens.format import at, cell, esc, screen_text
from screens.widgets.hanging import Hanging, HangingText
from screens.widgets.update import show


def _short(title: str) -> str:
    """A step title short enough for a grid column."""
    words = title.replace("(", "").replace(")", "").split()
    return " ".join(words[:3])[:18]


# Beside the step's title: the host, the status ("✗ failed 18:33:21", "✗ 18:33:21 · retry"),
# the time it took, each with the table's padding, and the scrollbar.
BESIDE_STEP = 2 + 18 + 2 + 6 + 2 + 2 + 2


def _left(seconds: float) -> str:
    """Time left: 14:32, or 1:02:03 past an hour."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def check_mark(passed: object) -> str:
    """A validation result: passed, failed, or — when it could not be measured — unknown."""
    if passed is True:
        return "[$success]PASS[/]"
    if passed is False:
        return "[$error]FAIL[/]"
    return "[$warning]CANNOT ASSESS[/]"


_STAMPED = re.compile(r"\d\d:\d\d:\d\d [✓✗·] ")


REWRAP_AFTER_S = 0.15  # a terminal dragged wider sends a burst of resizes: wrap once, at the end


class RunLog(RichLog):
    """The run's log: a long line continues under its message ("12:00:01 ✓ " or "  │ "
    kept clear on the left), not at the left edge where it reads as a line of its own.
    RichLog wraps a line once, when it is written; this log keeps what was written and wraps
    it again when its width changes (a terminal made wider no longer shows lines broken at the
    old width, nor a narrower one lines cut off)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._written: deque[tuple[object, dict[str, Any]]] = deque(maxlen=self.max_lines)
        self._wrapped_at = 0
        self._rewrap: Timer | None = None

    def write(self, content: object, *args: Any, **kw: Any) -> RunLog:  # type: ignore[override]
        if isinstance(content, str):
            stamped = _STAMPED.match(content)
            content = HangingText(content, extra=stamped.end() if stamped else 2)
        if self._size_known:  # before that RichLog keeps it, and writes it through here later
            self._written.append((content, dict(zip(("width", "expand", "shrink"), args, strict=False)) | kw))
            self._wrapped_at = self.scrollable_content_region.width
        super().write(content, *args, **kw)
        return self

    def on_resize(self) -> None:
        if self._wrapped_at and self.scrollable_content_region.width != self._wrapped_at:
            if self._rewrap is not None:
                self._rewrap.stop()
            self._rewrap = self.set_timer(REWRAP_AFTER_S, self._rewrap_now)

    def _rewrap_now(self) -> None:
        self._rewrap = None
        width = self.scrollable_content_region.width
        if not width or width == self._wrapped_at:
            return
        at_end = self.scroll_y >= self.max_scroll_y
        RichLog.clear(self)  # not ours: what was written stays
        for content, kw in self._written:
            RichLog.write(self, content, **{**kw, "scroll_end": False})
        self._wrapped_at = width
        if at_end:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def clear(self) -> RunLog:
        self._written.clear()
        self._wrapped_at = 0
        super().clear()
        return self


class RunView(VerticalScroll, can_focus=False):
    """Scrolls as a whole when the terminal is too short for all of it (80×24 with the
    validations shown): nothing is cut off, the run's log included (PgUp/PgDn, the wheel)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_id: str | None = None
        self.started: float | None = None  # wall clock (epoch seconds)
        self.target_s: float | None = None
        self.title = ""
        self.outcome: str | None = None
        self.state: str | None = None  # e.g. "waiting for approval by …": shown instead of a clock
        self.lapses_at: float | None = None  # while a request waits: when it lapses (a countdown)
        self.running: dict[str, float] = {}  # row key -> start (epoch seconds)
        self.finished: float | None = None
        self.grid = False  # a fleet: one row per host, one column per step
        self.host_state: dict[str, str] = {}  # host -> "ok" | "failed" | "running"
        self.failed: dict[str, float] = {}  # row key -> when it failed: its last known result
        self.labels: dict[str, tuple[str, str]] = {}  # row key -> (step title, host), to wrap again

    def compose(self) -> ComposeResult:
        yield Static("", id="run-head")
        yield DataTable(id="run-steps", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-validations")
        yield RunLog(id="run-output", max_lines=2000, markup=False, wrap=True, min_width=20)

    def on_mount(self) -> None:
        self._single_columns()
        self.set_interval(0.5, self.tick)

    def page(self, direction: int) -> None:
        """PgDn/PgUp on a screen holding the view, wherever the focus is — except on the
        step table, which pages through its own rows instead."""
        if direction > 0:
            self.scroll_page_down(animate=False)
        else:
            self.scroll_page_up(animate=False)

    def now(self) -> float:
        clock = getattr(self.app, "clock", None)
        return float(clock()) if callable(clock) else time.time()

    def _step_row(self, label: str, host: str, key: str | None = None) -> tuple[str, int | None]:
        """A step's title for its cell and the row's height: a title too long to leave the status
        on screen (a database step's, at 80 columns) wraps instead (None: as tall as it needs).
        With ``key``, the row's label is kept, to wrap it again when the width changes."""
        if key is not None:
            self.labels[key] = (label, host)
        room = max(20, (self.size.width or self.app.size.width) - max(4, len(host)) - BESIDE_STEP)
        if len(label) <= room:
            return esc(label), 1
        return esc("\n".join(textwrap.wrap(label, room))), None

    def on_resize(self) -> None:
        """A terminal narrowed mid-run (a pane split off beside it) would push the status off
        screen behind titles wrapped for the old width: the rows are wrapped again — after
        the resize's own repaint, as rows added during it are drawn before the table has
        measured them (and stay cropped to the column titles' widths)."""
        if not self.grid and self.labels:
            self.call_after_refresh(self._wrap_again)

    def _wrap_again(self) -> None:
        if self.grid or not self.labels:
            return
        table = self.query_one("#run-steps", DataTable)
        rows = [(str(row.key.value), table.get_row(row.key), row.height) for row in table.ordered_rows]
        wrapped = {
            key: self._step_row(*self.labels[key]) if key in self.labels else (cells[0], height)
            for key, cells, height in rows
        }
        if all(cells[0] == wrapped[key][0] for key, cells, _ in rows):
            return
        cursor = table.cursor_row
        self._columns(table)  # their widths are the old titles' otherwise
        for key, cells, _ in rows:
            title, height = wrapped[key]
            table.add_row(title, *cells[1:], key=key, height=height)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def _single_columns(self) -> None:
        self.labels.clear()
        self._columns(self.query_one("#run-steps", DataTable))

    @staticmethod
    def _columns(table: DataTable) -> None:
        table.clear(columns=True)
        table.add_column("Step", key="step")
        table.add_column("Host", key="host")
        table.add_column("Status", key="status")
        table.add_column("Took", key="time")

    # --- which run ----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything shown: a new run is about to be shown."""
        self.run_id = self.started = self.target_s = self.outcome = self.state = self.finished = None
        self.lapses_at = None
        self.title = ""
        self.running.clear()
        self.host_state.clear()
        self.failed.clear()
        self.grid = False
        self._single_columns()
        self.query_one("#run-validations", Static).update("")
        self.query_one("#run-output", RichLog).clear()
        self.query_one("#run-head", Static).update("")

    def start(
        self,
        title: str,
        target_s: float | None,
        started: float | None = None,
        *,
        run_id: str | None = None,
        hosts: list[str] | None = None,
        steps: list[tuple[str, str]] | None = None,
    ) -> None:
        """Begin showing a run. Several hosts: a grid of hosts × steps (the fleet view)."""
        self.title, self.target_s = title, target_s
        self.run_id = run_id or self.run_id
        self.started = started or self.now()
        self.outcome = self.state = self.finished = self.lapses_at = None
        grid = bool(hosts and len(hosts) > 1)
        table = self.query_one("#run-steps", DataTable)
        if grid and not self.grid:
            assert hosts is not None
            table.clear(columns=True)
            table.add_column("Host", key="host")
            for step_id, step_title in steps or []:
                table.add_column(_short(step_title), key=f"run:{step_id}")
            for host in [*hosts, "*"]:
                table.add_row("(environment)" if host == "*" else esc(host), key=host)
            self.host_state = dict.fromkeys(hosts, "")
        self.grid = grid
        self.tick()

    def pending(
        self,
        title: str,
        run_id: str,
        requester: str,
        requested_at: float | None,
        steps: list[str],
        lapses_at: float | None = None,
    ) -> None:
        """A production run waiting for a second person: nothing has run, nothing passed."""
        self.reset()
        self.title, self.run_id = title, run_id
        self.state = (
            f"[reverse $warning] waiting for approval [/] by a team lead or on-call (not {esc(requester)}), "
            f"requested {at(requested_at)} UTC — nothing has run yet"
        )
        self.lapses_at = lapses_at
        table = self.query_one("#run-steps", DataTable)
        for i, step in enumerate(steps):
            title, height = self._step_row(step, "", f"plan:{i}")
            not_started = cell(self.app, "[$text-muted]not started[/]")
            table.add_row(title, "", not_started, "", key=f"plan:{i}", height=height)
        self.tick()

    # --- the head -----------------------------------------------------------------------
    def tick(self) -> None:
        ident = f"\nrun [b]{esc(self.run_id)}[/b]" if self.run_id else ""
        if self.state is not None:
            countdown = ""
            if self.lapses_at is not None:
                left = max(0.0, self.lapses_at - self.now())
                countdown = f"\nlapses in [b]{_left(left)}[/b] (at {at(self.lapses_at)} UTC) unless approved"
            show(self.query_one("#run-head", Static), f"[b]{esc(self.title)}[/b]  {self.state}{countdown}{ident}")
            return
        if self.started is None:
            return
        now = self.now()
        elapsed = (self.finished or now) - self.started
        target = f" / target {_clock(self.target_s)}" if self.target_s else ""
        over = self.target_s is not None and elapsed > self.target_s and self.outcome is None
        clock = f"[$error]{_clock(elapsed)}[/]" if over else _clock(elapsed)
        state = f" — [b]{esc(self.outcome)}[/b]" if self.outcome else ""
        since = f" · started {at(self.started)} UTC" if self.run_id else ""
        fleet = ""
        if self.grid:
            counts = {k: sum(1 for v in self.host_state.values() if v == k) for k in ("ok", "failed", "running")}
            fleet = (
                f"\nhosts: [$success]{counts['ok']} ✓[/]  [$error]{counts['failed']} ✗[/]  "
                f"{counts['running']} running  of {len(self.host_state)}"
            )
        # Twice a second: redrawn only when it changed, without a layout pass while its shape holds.
        head = f"[b]{esc(self.title)}[/b]  {clock}{target}{state}{ident}{since}{fleet}"
        show(self.query_one("#run-head", Static), head)
        if self.grid:
            return
        table = self.query_one("#run-steps", DataTable)
        for key, began in self.running.items():
            if key in table.rows:
                table.update_cell(key, "time", f"{max(0.0, now - began):.1f}s", update_width=True)

    # --- events -------------------------------------------------------------------------
    def apply(
        self,
        kind: str,
        step: str | None,
        host: str | None,
        message: str,
        data: dict[str, Any],
        ts: float | None = None,
    ) -> None:
        """One runner event or journal record; ``ts`` is when it happened (epoch seconds)."""
        ts = self.now() if ts is None else ts
        table = self.query_one("#run-steps", DataTable)
        out = self.query_one("#run-output", RichLog)
        message = self._text(message)
        phase = data.get("phase", "run")
        if self.grid and kind in ("step_started", "step_finished", "step_failed"):
            self._grid_cell(kind, phase, step, host, message, data, ts)
            return
        key = f"{phase}:{step}:{host or '*'}"
        label = ("undo: " if phase == "undo" else "") + str(data.get("title") or message or step)
        if kind == "step_started":
            self.failed.pop(key, None)
            if key not in table.rows:
                title, height = self._step_row(label, host or "", key)
                table.add_row(title, esc(host or ""), "running…", "", key=key, height=height)
            else:
                table.update_cell(key, "status", "running…", update_width=True)
                table.update_cell(key, "time", "", update_width=True)
            self.running[key] = ts
            table.move_cursor(row=table.get_row_index(key))
            if step == "validate":  # earlier results are no longer the latest word
                self._validations_stale(f"validating again since {at(ts)}…")
        elif kind in ("step_finished", "step_failed"):
            self.running.pop(key, None)
            if key not in table.rows:
                title, height = self._step_row(step or "", host or "", key)
                table.add_row(title, esc(host or ""), "", "", key=key, height=height)
            ok = kind == "step_finished"
            status = f"[$success]✓ done {at(ts)}[/]" if ok else f"[$error]✗ failed {at(ts)}[/]"
            if ok:
                self.failed.pop(key, None)
            else:
                self.failed[key] = ts
            table.update_cell(key, "status", cell(self.app, status), update_width=True)
            if data.get("elapsed_s") is not None:
                table.update_cell(key, "time", f"{float(data['elapsed_s']):.2f}s", update_width=True)
            prefix = f"[{host}] " if host else ""
            out.write(f"{at(ts)} " + ("✓ " if ok else "✗ ") + prefix + message)
            if not ok and data.get("troubleshooting"):
                out.write(f"  runbook troubleshooting — {self._text(str(data['troubleshooting']))}")
        elif kind == "output":
            out.write(f"  │ {'[' + host + '] ' if host else ''}{message}")
        elif kind == "decision":
            by = f" by {self._text(str(data['by']))}" if data.get("by") else ""
            reason = f": {self._text(str(data['reason']))}" if data.get("reason") else ""
            decision = data.get("decision") or message
            out.write(f"{at(ts)} · decision: {decision}{by}{reason}")
            # The step's failed rows (on every host) stay failed (✗, when), now with what was
            # decided in place of the word: "failed" and the decision would push the time it
            # took off an 80-column screen.
            for failed, when in self.failed.items():
                if failed.startswith(f"{phase}:{step}:") and failed in table.rows:
                    status = f"[$error]✗ {at(when)}[/] · {esc(decision)}"
                    table.update_cell(failed, "status", cell(self.app, status), update_width=True)
        elif kind == "note":
            out.write(f"{at(ts)} · {message}")
        elif kind == "validation":
            lines = [f"[b]validations taken at {at(ts)} UTC[/b]"]
            for c in data.get("checks", []):
                if isinstance(c, dict):
                    lines.append(f"{check_mark(c.get('passed'))} {esc(c.get('title'))}: {esc(c.get('detail'))}")
            # A long detail continues under the check's title, not under PASS.
            self.query_one("#run-validations", Static).update(Hanging("\n".join(lines), extra=5))
        elif kind == "run_finished":
            self.outcome = data.get("outcome") or message
            self.finished = ts
            if data.get("duration_s") is not None and self.started is not None:
                self.finished = self.started + float(data["duration_s"])  # the run's own measure
            for key in list(self.running):
                if key in table.rows:
                    table.update_cell(key, "status", cell(self.app, "[$warning]not finished[/]"), update_width=True)
            self.running.clear()
            self.tick()

    def _text(self, message: str) -> str:
        redact = getattr(self.app, "redact", None)
        return screen_text(redact(message) if callable(redact) else message)

    def _validations_stale(self, note: str) -> None:
        self.query_one("#run-validations", Static).update(f"[$text-muted]{esc(note)}[/]")

    def _grid_cell(
        self,
        kind: str,
        phase: str,
        step: str | None,
        host: str | None,
        message: str,
        data: dict[str, Any],
        ts: float,
    ) -> None:
        table = self.query_one("#run-steps", DataTable)
        out = self.query_one("#run-output", RichLog)
        row = host or "*"
        column = f"{phase}:{step}"
        if column not in table.columns:
            label = ("undo: " if phase == "undo" else "") + str(data.get("title") or step)
            table.add_column(_short(label), key=column)
        if row not in table.rows:
            table.add_row(esc(row), key=row)
        if kind == "step_started":
            table.update_cell(row, column, "…", update_width=True)
            if host:
                self.host_state[host] = "running"  # a retry clears an earlier failure
            if step == "validate":
                self._validations_stale(f"validating again since {at(ts)}…")
            return
        ok = kind == "step_finished"
        elapsed = data.get("elapsed_s")
        text = ("[$success]✓[/]" if ok else "[$error]✗[/]") + (f" {float(elapsed):.1f}s" if elapsed is not None else "")
        table.update_cell(row, column, cell(self.app, text), update_width=True)
        if host:
            self.host_state[host] = (
                "failed" if not ok else ("ok" if self.host_state.get(host) != "failed" else "failed")
            )
        if not ok:
            out.write(f"{at(ts)} ✗ [{row}] {message}")
