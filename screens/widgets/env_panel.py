"""One environment on the dashboard: flags from three sources, health, latency, errors,
memory and the recommended action — and what the journal says: an approval request open
on it (with the approve command whole), the rollback in effect (with how to restore it).
Focus it and press Enter for the focused view."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from console.config.model import Config
from console.probes.series import percentile
from console.runbook.matrix import limit
from screens import format as fmt
from screens.state import LiveEnvironment
from screens.widgets.update import show

WINDOW_LABEL = 7  # " 59 min": the span of the rounds the sparkline draws


class EnvPanel(Widget, can_focus=True):
    BINDINGS = [
        Binding("enter", "open", "Open", id="panel.open"),
        Binding("r", "rollback", "Rollback", id="panel.rollback"),
        # Only while a request is open here / a rollback is in effect; the panel's note names the key.
        Binding("a", "requests", "Approval request", id="panel.requests", show=False),
        Binding("R", "restore", "Restore", id="panel.restore", show=False),
        # Arrow keys move between panels (the scrolling container would take them otherwise).
        Binding("down,j", "app.focus_next", "Next", id="panel.next", show=False),
        Binding("up,k", "app.focus_previous", "Previous", id="panel.previous", show=False),
    ]

    class Selected(Message):
        def __init__(self, environment: str) -> None:
            super().__init__()
            self.environment = environment

    class RollbackRequested(Message):
        def __init__(self, environment: str, action: str = "rollback") -> None:
            super().__init__()
            self.environment = environment
            self.action = action  # "rollback", "restore" or "requests"

    def __init__(self, live: LiveEnvironment, config: Config, *, read_only: bool = False) -> None:
        super().__init__(id=f"env-{live.env.name}", classes="env-panel")
        self.live = live
        self.config = config
        self.read_only = read_only
        env = live.env
        n = len(env.hosts)
        self.name_title = f"{env.name} · {env.kind}" + (f" · {n} hosts" if n > 1 else "")
        self.border_title = self.name_title

    # Selected is visible without colour: a marker in the title (and a heavy border, in CSS).
    def on_focus(self) -> None:
        self.border_title = f"▶ {self.name_title}"

    def on_blur(self) -> None:
        self.border_title = self.name_title

    def compose(self) -> ComposeResult:
        # Few widgets, each a block of markup: cheap to lay out and to restyle.
        with Horizontal(classes="panel-body"):
            yield Static(fmt.flag_table(None, self.live.profile.flags), classes="flags")
            yield Static("health   …", classes="metrics")
        yield Static("", classes="drift-note")
        yield Static("", classes="standing")
        yield Static("", classes="extra")
        yield Static(fmt.recommendation_line(None), classes="recommendation")

    def on_mount(self) -> None:
        self._flags, self._metrics_box, self._recommendation, self._extra_box, self._drift = (
            self.query_one(f".{name}", Static) for name in ("flags", "metrics", "recommendation", "extra", "drift-note")
        )
        self.refresh_from_live()

    def on_resize(self) -> None:
        self.refresh_from_live()  # the sparkline is as wide as the panel allows

    def _metrics(self) -> str:
        live, s = self.live, self.live.snapshot
        assert s is not None
        t = self.config.thresholds
        critical = limit(self.app.matrix(self.live.env.name).rows, "response_time_s") or 5.0
        room = max(8, self._metrics_box.size.width - 9)
        # p50/p95 of the rounds the sparkline draws, with the time they span: over the whole
        # series (10 minutes) a p95 of 3 s stayed beside bars all low long after a rollback.
        width = room - WINDOW_LABEL if room >= 20 else room
        shown = list(live.series.points)[-width:]
        values = [v for _, v in shown]
        measured = [v for v in values if v is not None]  # rounds without an answer are gaps
        label = f" [$text-muted]{fmt.window(s.taken_at - shown[0][0])}[/]" if width < room and len(shown) > 1 else ""
        return "\n".join(
            (
                fmt.health_line(s),
                "latency  " + fmt.sparkline(values, t.response_time_ok_s, critical, width) + label,
                "         " + fmt.latency_line(s, percentile(measured, 50), percentile(measured, 95), t, critical),
                fmt.errors_line(s),
                fmt.memory_line(s, t),
            )
        )

    def _standing(self) -> None:
        lines: list[str] = []
        if self.standing() is not None:  # until the journal's first look, nothing to show (or load)
            from screens.standing import standing_lines

            lines = standing_lines(self.app, self.live.env.name)  # type: ignore[arg-type]
        note = self.query_one(".standing", Static)
        if note.display != bool(lines):
            note.display = bool(lines)
        show(note, "\n".join(lines), hang=2)  # unchanged (the usual case): no work
        self.set_class(bool(lines), "-standing")

    def standing(self):  # type: ignore[no-untyped-def]
        return getattr(self.app, "standing", {}).get(self.live.env.name)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        standing = self.standing()
        if action == "requests":
            return bool(standing and standing.requests) and not self.read_only
        if action == "restore":
            return bool(standing and standing.rolled_back) and not self.read_only
        return True

    def refresh_from_live(self) -> None:
        """Show the latest probe round. Only what changed is redrawn, and only text that can
        change its widget's size asks for a layout pass of the dashboard."""
        self._standing()
        live, s = self.live, self.live.snapshot
        if live.probe_error and s is None:
            show(self._metrics_box, f"[$error]{fmt.esc(live.probe_error)[:200]}[/]")
            return
        if s is None:
            return
        show(self._flags, fmt.flag_table(s, self.live.profile.flags))
        show(self._metrics_box, self._metrics())
        rec = live.recommendation
        show(self._recommendation, fmt.recommendation_line(rec), hang=2)
        # What could not be assessed is as loud as a lit symptom: the same alarm border.
        unknown = bool(rec and not rec.assessed)
        self.set_class(bool(rec and rec.action) or unknown, "-alert")
        self.set_class(unknown, "-unknown")
        self.set_class(not s.reachable_hosts, "-down")
        if self._extra_box.display:  # only on a roomy dashboard
            show(self._extra_box, self._extra())
        drift = [h for h in s.hosts if h.flags.drift]
        self.set_class(bool(drift), "-drift")
        # No service process where the host answered: the first thing to know, before any drift.
        down = [h.host for h in s.reachable_hosts if h.flags.not_running]
        note = self._drift
        if note.display != bool(drift or down):
            note.display = bool(drift or down)
        if down:
            where = ", ".join(down[:2]) + (f" and {len(down) - 2} more" if len(down) > 2 else "")
            show(
                note,
                f"[reverse $error] NOT RUNNING [/] {fmt.esc(where)}: the pid command finds no service process",
                hang=2,
            )
        elif drift:
            stale = any(h.flags.stale_process for h in drift)
            show(
                note,
                "[reverse $warning] DRIFT [/] "
                + (
                    "the running process does not have the env file's flags: restart needed (troubleshooting 1)"
                    if stale
                    else "the log's last flag line differs from the running process"
                ),
                hang=2,
            )
        unreachable = [h.host for h in s.hosts if h.unreachable]
        if live.probe_error:  # the facts above are the last ones known: say so
            subtitle = f"[$error]{fmt.esc(live.probe_error)[:50]}[/] · shown: last probe"
        elif unreachable:
            subtitle = f"[$error]cannot assess · unreachable: {fmt.esc(', '.join(unreachable)[:40])}[/]"
        elif unknown:
            subtitle = "[$error]cannot assess[/]"
        else:
            subtitle = f"probed in {s.elapsed_s:.1f}s"
        if getattr(self, "_subtitle_shown", None) != subtitle:
            self._subtitle_shown = subtitle
            self.border_subtitle = subtitle

    def _extra(self) -> str:
        """What a big terminal has room for: database, troubleshooting, the last log lines."""
        s = self.live.snapshot
        if s is None:
            return ""
        lines = []
        db = s.database
        if db is not None:
            if db.error:
                lines.append(f"database [$error]{fmt.esc(db.error)[:120]}[/]")
            else:
                cols = " ".join(f"{c} {'✓' if p else '✗'}" for c, p in db.columns)
                extra = f" · also drops: {fmt.esc(', '.join(db.extra_dependents))}" if db.extra_dependents else ""
                lines.append(f"database {cols} · {sum(p for _, p in db.indexes)}/{len(db.indexes)} indexes{extra}")
        from console.runbook import troubleshooting

        for f in troubleshooting.findings(self.live.env, s):
            lines.append(f"[$warning]{fmt.esc(f.title)}[/] — {fmt.esc(f.evidence)[:140]}")
        tail = [line for h in s.reachable_hosts[:1] for line in h.logs.tail[-6:]]
        if tail:
            lines.append("[b]log[/b]")
            lines.extend(fmt.log_line(self.app.redact(line), self.live.log_rules)[:400] for line in tail)
        return "\n".join(lines)

    def action_open(self) -> None:
        self.post_message(self.Selected(self.live.env.name))

    def action_rollback(self) -> None:
        if not self.read_only:
            self.post_message(self.RollbackRequested(self.live.env.name))

    def action_requests(self) -> None:
        if not self.read_only:
            self.post_message(self.RollbackRequested(self.live.env.name, "requests"))

    def action_restore(self) -> None:
        if not self.read_only:
            self.post_message(self.RollbackRequested(self.live.env.name, "restore"))
