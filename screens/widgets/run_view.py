"""A run as it happens: each step on each host with its timer, the validations, and the
streamed output. Fed by runner events (the wizard) or journal records (watch mode)."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, RichLog, Static

from console.safe_text import clean
from screens.format import cell, esc


def _short(title: str) -> str:
    """A step title short enough for a grid column."""
    words = title.replace("(", "").replace(")", "").split()
    return " ".join(words[:3])[:18]


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


class RunView(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.started: float | None = None
        self.target_s: float | None = None
        self.title = ""
        self.outcome: str | None = None
        self.running: dict[str, float] = {}  # row key -> start (monotonic)
        self.finished: float | None = None
        self.grid = False  # a fleet: one row per host, one column per step
        self.host_state: dict[str, str] = {}  # host -> "ok" | "failed" | "running"

    def compose(self) -> ComposeResult:
        yield Static("", id="run-head")
        yield DataTable(id="run-steps", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-validations")
        yield RichLog(id="run-output", max_lines=2000, markup=False, wrap=False)

    def on_mount(self) -> None:
        table = self.query_one("#run-steps", DataTable)
        table.add_column("Step", key="step")
        table.add_column("Host", key="host")
        table.add_column("Status", key="status")
        table.add_column("Time", key="time")
        self.set_interval(0.5, self.tick)

    def start(
        self,
        title: str,
        target_s: float | None,
        started: float | None = None,
        *,
        hosts: list[str] | None = None,
        steps: list[tuple[str, str]] | None = None,
    ) -> None:
        """Begin showing a run. Several hosts: a grid of hosts × steps (the fleet view)."""
        self.title, self.target_s = title, target_s
        self.started = started or time.monotonic()
        self.outcome = None
        self.finished = None
        self.grid = bool(hosts and len(hosts) > 1)
        if self.grid:
            assert hosts is not None
            table = self.query_one("#run-steps", DataTable)
            table.clear(columns=True)
            table.add_column("Host", key="host")
            for step_id, step_title in steps or []:
                table.add_column(_short(step_title), key=f"run:{step_id}")
            for host in [*hosts, "*"]:
                table.add_row("(environment)" if host == "*" else esc(host), key=host)
            self.host_state = dict.fromkeys(hosts, "")
        self.tick()

    def tick(self) -> None:
        if self.started is None:
            return
        elapsed = (self.finished or time.monotonic()) - self.started
        target = f" / target {_clock(self.target_s)}" if self.target_s else ""
        over = self.target_s is not None and elapsed > self.target_s and self.outcome is None
        clock = f"[$error]{_clock(elapsed)}[/]" if over else _clock(elapsed)
        state = f" — [b]{esc(self.outcome)}[/b]" if self.outcome else ""
        fleet = ""
        if self.grid:
            counts = {k: sum(1 for v in self.host_state.values() if v == k) for k in ("ok", "failed", "running")}
            fleet = (
                f"\nhosts: [$success]{counts['ok']} ✓[/]  [$error]{counts['failed']} ✗[/]  "
                f"{counts['running']} running  of {len(self.host_state)}"
            )
        self.query_one("#run-head", Static).update(f"[b]{esc(self.title)}[/b]  {clock}{target}{state}{fleet}")
        if self.grid:
            return
        table = self.query_one("#run-steps", DataTable)
        for key, began in self.running.items():
            table.update_cell(key, "time", f"{time.monotonic() - began:.1f}s")

    def apply(self, kind: str, step: str | None, host: str | None, message: str, data: dict[str, Any]) -> None:
        """One runner event or journal record."""
        table = self.query_one("#run-steps", DataTable)
        out = self.query_one("#run-output", RichLog)
        message = clean(self.app.redact(message)) if hasattr(self.app, "redact") else clean(message)
        phase = data.get("phase", "run")
        if self.grid and kind in ("step_started", "step_finished", "step_failed"):
            self._grid_cell(kind, phase, step, host, message, data)
            return
        key = f"{phase}:{step}:{host or '*'}"
        label = ("undo: " if phase == "undo" else "") + str(data.get("title") or message or step)
        if kind == "step_started":
            if key not in table.rows:
                table.add_row(esc(label), esc(host or ""), "running…", "", key=key)
            else:
                table.update_cell(key, "status", "running…")
            self.running[key] = time.monotonic()
            table.move_cursor(row=table.get_row_index(key))
        elif kind in ("step_finished", "step_failed"):
            self.running.pop(key, None)
            if key not in table.rows:
                table.add_row(esc(step or ""), esc(host or ""), "", "", key=key)
            ok = kind == "step_finished"
            status = "[$success]✓ done[/]" if ok else "[$error]✗ failed[/]"
            table.update_cell(key, "status", cell(self.app, status))
            if data.get("elapsed_s") is not None:
                table.update_cell(key, "time", f"{float(data['elapsed_s']):.2f}s")
            prefix = f"[{host}] " if host else ""
            out.write(("✓ " if ok else "✗ ") + prefix + message)
            if not ok and data.get("troubleshooting"):
                out.write(f"  runbook troubleshooting — {data['troubleshooting']}")
        elif kind == "output":
            out.write(f"  │ {'[' + host + '] ' if host else ''}{message}")
        elif kind == "decision":
            by = f" by {data['by']}" if data.get("by") else ""
            reason = f": {data['reason']}" if data.get("reason") else ""
            out.write(f"· decision: {data.get('decision') or message}{by}{reason}")
        elif kind == "note":
            out.write(f"· {message}")
        elif kind == "validation":
            lines = []
            for c in data.get("checks", []):
                mark = "[$success]PASS[/]" if c.get("passed") else "[$error]FAIL[/]"
                lines.append(f"{mark} {esc(c.get('title'))}: {esc(c.get('detail'))}")
            self.query_one("#run-validations", Static).update("\n".join(lines))
        elif kind == "run_finished":
            self.outcome = data.get("outcome") or message
            self.finished = time.monotonic()
            if data.get("duration_s") is not None and self.started is not None:
                self.finished = self.started + float(data["duration_s"])  # the run's own measure
            self.running.clear()
            self.tick()

    def _grid_cell(
        self, kind: str, phase: str, step: str | None, host: str | None, message: str, data: dict[str, Any]
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
            table.update_cell(row, column, "…")
            if host:
                self.host_state[host] = "running"  # a retry clears an earlier failure
            return
        ok = kind == "step_finished"
        elapsed = data.get("elapsed_s")
        text = ("[$success]✓[/]" if ok else "[$error]✗[/]") + (f" {float(elapsed):.1f}s" if elapsed is not None else "")
        table.update_cell(row, column, cell(self.app, text))
        if host:
            self.host_state[host] = (
                "failed" if not ok else ("ok" if self.host_state.get(host) != "failed" else "failed")
            )
        if not ok:
            out.write(f"✗ [{row}] {message}")
