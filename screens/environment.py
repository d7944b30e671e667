"""The focused view of one environment: latency chart, log tail, process, decision
matrix, hosts, troubleshooting and database — everything the dashboard summarises."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from console.journal import JournalError, RunSummary
from console.runbook import troubleshooting
from console.runbook.matrix import limit
from screens import format as fmt
from screens.state import LiveEnvironment
from screens.widgets.footer import ConsoleFooter
from screens.widgets.header import ConsoleHeader
from screens.widgets.tables import Column, refill

MATRIX_COLUMNS = (
    Column("lit", "", 3),
    Column("symptom", "Symptom", weight=3),
    Column("severity", "Severity", 8),
    Column("action", "Action", weight=3),
    Column("timeline", "Timeline", weight=2),
    Column("seen", "Seen", weight=4),
)
SCROLLS = {"tab-log": "#log-scroll", "tab-process": "#process-scroll", "tab-trouble": "#trouble-scroll"}


class EnvironmentScreen(Screen):
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="env.back"),
        Binding("r", "rollback", "Rollback", id="env.rollback"),
        Binding("p", "probe", "Probe now", id="env.probe"),
        # The open tab's text scrolls from the tabs too (Tab moves into it; End follows the log's tail).
        Binding("down", "scroll('down')", "Scroll down", id="env.scroll-down", show=False),
        Binding("up", "scroll('up')", "Scroll up", id="env.scroll-up", show=False),
        Binding("pagedown", "scroll('page_down')", "Page down", id="env.page-down", show=False),
        Binding("pageup", "scroll('page_up')", "Page up", id="env.page-up", show=False),
        Binding("end", "scroll('end')", "End (the log follows its tail)", id="env.end", show=False),
        Binding("home", "scroll('home')", "Top", id="env.home", show=False),
    ]

    def __init__(self, live: LiveEnvironment) -> None:
        super().__init__()
        self.live = live
        self.last_run: RunSummary | None = None  # of this environment, from the run index
        self._last_run_read = False
        self._last_run_key: tuple[str, str, int] | None = None

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield Static(id="env-summary")
        with TabbedContent(id="env-tabs"):
            with TabPane("Latency", id="tab-latency"):
                yield PlotextPlot(id="latency-chart")
            with TabPane("Log", id="tab-log"), VerticalScroll(id="log-scroll"):
                yield Static(id="log-tail")
            with TabPane("Process", id="tab-process"), VerticalScroll(id="process-scroll"):
                yield Static(id="process")
            with TabPane("Matrix", id="tab-matrix"):
                yield DataTable(id="matrix", cursor_type="row", zebra_stripes=True)
            with TabPane("Hosts", id="tab-hosts"):
                yield DataTable(id="hosts", cursor_type="row", zebra_stripes=True)
            with TabPane("Troubleshooting", id="tab-trouble"), VerticalScroll(id="trouble-scroll"):
                yield Static(id="trouble")
            with TabPane("Database", id="tab-db"), VerticalScroll():
                yield Static(id="database")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.title = fmt.env_title(self.live.env)
        self._matrix()
        hosts = self.query_one("#hosts", DataTable)
        hosts.add_columns("Host", "Health", "Flags env/proc/log", "Latency", "ERRORs", "RSS", "Problem")
        for h in self.live.env.hosts:
            hosts.add_row(h.name, "…", "", "", "", "", "", key=h.name)
        self.app.env_updated.subscribe(self, self._updated)
        self.refresh_all()

    def _updated(self, name: str) -> None:
        if name == self.live.env.name and self.is_current:
            self.refresh_all()

    def on_screen_resume(self) -> None:
        self.refresh_all()

    def on_resize(self) -> None:
        self._matrix()

    def refresh_all(self) -> None:
        s, live, config = self.live.snapshot, self.live, self.app.config
        if s is None:
            self.query_one("#env-summary", Static).update(fmt.esc(live.probe_error or "probing…"))
            return
        t = config.thresholds
        critical = limit(self.app.matrix(live.env.name).rows, "response_time_s") or 5.0
        with self.app.batch_update():
            self.query_one("#env-summary", Static).update(
                fmt.recommendation_line(live.recommendation)
                + "\n"
                + fmt.health_line(s)
                + "   latency "
                + fmt.latency_line(s, live.series.p50, live.series.p95, t, critical, fmt.rounds_over(live.series))
                + "\n"
                + fmt.errors_line(s)
                + "   "
                + fmt.memory_line(s, t)
            )
            self._chart(t.response_time_ok_s, critical)
            self._log_tail(s)
            self._process(s)
            self._matrix()
            self._hosts(s)
            self._trouble(s)
            self._database(s)

    def _chart(self, ok: float, critical: float) -> None:
        plot = self.query_one("#latency-chart", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        points = list(self.live.series.points)
        s = self.live.snapshot
        # The profile's word for its request ("best-times"), as a host that was probed has it.
        name = next((h.probe.name for h in s.hosts if h.probe.request), "probe") if s is not None else "probe"
        since = ""
        measured = [(when, v) for when, v in points if v is not None]
        if measured:
            t0 = points[0][0]
            since = f" since {fmt.at(t0)} UTC"  # the first round shown: a bare "seconds" said from when?
            xs = [round(when - t0, 1) for when, _ in measured]
            plt.plot(xs, [v for _, v in measured], marker="braille", label=name)
            # To the latest round, answered or not: an outage shows as the line stopping.
            plt.xlim(0, max(xs[-1], round(points[-1][0] - t0, 1)) or 1)
            plt.hline(ok, "green")
            plt.hline(critical, "red")
            plt.ylim(0, max(critical * 1.2, max(v for _, v in measured) * 1.1))
        plt.title(f"{name} latency (s) — lines at {ok:g}s (validation) and {critical:g}s (quick rollback)")
        plt.xlabel(f"seconds{since}")
        plot.refresh()

    def _log_tail(self, s) -> None:
        lines = []
        for h in s.hosts:
            if len(s.hosts) > 1:
                lines.append(f"[b]── {fmt.esc(h.host)}[/b]")
            if h.logs.error:
                lines.append(f"[$error]{fmt.esc(h.logs.error)}[/]")
            for line in h.logs.tail:
                text = fmt.esc(self.app.redact(line[:300]))
                if self.live.log_rules.is_error(line):
                    lines.append(f"[$error]{text}[/]")
                elif self.live.log_rules.is_flag_line(line):
                    lines.append(f"[b $accent]{text}[/]")
                else:
                    lines.append(text)
        scroll = self.query_one("#log-scroll", VerticalScroll)
        following = scroll.scroll_y >= scroll.max_scroll_y - 1  # at the tail: stay there
        self.query_one("#log-tail", Static).update("\n".join(lines) or "[$text-muted]no log lines[/]")
        if following:
            self.call_after_refresh(scroll.scroll_end, animate=False)

    def _process(self, s) -> None:
        out = []
        for h in s.hosts:
            f = h.flags
            out.append(f"[b]{fmt.esc(h.host)}[/b] ({fmt.esc(h.where)}) pid {f.pid or '—'}")
            if f.process_error:
                out.append(f"  [$error]{fmt.esc(f.process_error)}[/]")
            for name, raw in f.process_raw:
                shown = "(not set → true)" if raw is None else fmt.esc(raw)
                out.append(f"  /proc/{f.pid}/environ  {name}={shown}")
            env_path = fmt.esc(self.live.env.expand(self.live.env.env_file, _host(self.live, h.host)))
            out.append(f"  [b]env file[/b] {env_path}")
            if f.env_file_error:
                out.append(f"    [$error]{fmt.esc(f.env_file_error)}[/]")
            for line, text in f.env_file_lines:
                out.append(f"    {line:>4}: {fmt.esc(text)}")
            for p in f.env_file_problems:
                out.append(f"    [$warning]{fmt.esc(p)}[/]")
            if f.log_line:
                out.append(f"  [b]last flag line[/b] {fmt.esc(f.log_line[:200])}")
            for d in f.drift:
                out.append(f"  [reverse $warning] DRIFT [/] {fmt.esc(d.describe())}")
        self.query_one("#process", Static).update("\n".join(out))

    def _matrix(self) -> None:
        """The decision matrix, wrapped to the width: no column drops off at 80 columns."""
        rec = self.live.recommendation
        findings = list(rec.findings) if rec is not None else []
        rows = []
        for i, row in enumerate(self.app.matrix(self.live.env.name).rows):
            finding = findings[i] if i < len(findings) else None
            mark, seen = "", ""
            if finding is not None:
                mark = "[reverse $error] ● [/]" if finding.lit else ("[$text-muted]?[/]" if not finding.known else "·")
                seen = fmt.esc(finding.evidence)
            cells = [mark, fmt.esc(row.symptom), row.severity, fmt.esc(row.advice or row.action), fmt.esc(row.timeline)]
            rows.append((str(i), [fmt.cell(self.app, c) for c in [*cells, seen]]))
        width = (self.size.width or self.app.size.width) - 4  # the tab pane's padding
        shown = (width, [(k, [c.plain for c in cells]) for k, cells in rows])
        if shown != getattr(self, "_matrix_shown", None):  # rebuilt (to re-wrap) only when it changed
            self._matrix_shown = shown
            refill(self.query_one("#matrix", DataTable), width, MATRIX_COLUMNS, rows)

    def _hosts(self, s) -> None:
        table = self.query_one("#hosts", DataTable)
        keys = [c.key for c in table.ordered_columns]
        for h in s.hosts:
            for key, value in zip(
                keys, fmt.host_row(h, self.app.config.thresholds, self.live.profile.flags), strict=True
            ):
                table.update_cell(h.host, key, fmt.cell(self.app, value))

    def _trouble(self, s) -> None:
        """The runbook's four issues: each applies now or not (or cannot be told), and why."""
        self._read_last_run()  # each round: another console may have run since
        if self._last_run_read:
            self._show_trouble(s)

    @work(exclusive=True, group="last-run", exit_on_error=False)
    async def _read_last_run(self) -> None:
        """The environment's latest run, from the run index, off the event loop."""
        try:
            run = await self.app.journal.latest_async(self.live.env.name, drills=self.app.is_drill)
            if run is not None and not self.app.of_this_console(run):
                run = None  # an earlier drill's: not this simulation's
        except JournalError as exc:
            self.query_one("#trouble", Static).update(f"[$error]{fmt.esc(exc)}[/]")
            return
        key = (run.run_id, run.outcome, len(run.records)) if run else None
        if self._last_run_read and key == self._last_run_key:
            return
        self.last_run, self._last_run_key, self._last_run_read = run, key, True
        if self.live.snapshot is not None:
            self._show_trouble(self.live.snapshot)

    def _show_trouble(self, s) -> None:
        style = {True: "reverse $warning", False: "$success", None: "reverse $text-muted"}
        parts = []
        for issue in troubleshooting.assess(self.live.env, s, self.last_run):
            where = f" on {fmt.esc(', '.join(issue.hosts))}" if issue.hosts and len(s.hosts) > 1 else ""
            # A reversed badge is padded; plain coloured words are not ("—  does not apply").
            verdict = f" {issue.verdict} " if issue.applies is not False else issue.verdict
            parts.append(
                f"[b]{fmt.esc(issue.title)}[/b] — [{style[issue.applies]}]{verdict}[/]{where}\n"
                f"  [b]evidence[/b] {fmt.esc(issue.evidence)}\n"
                "  [b]fix[/b]\n" + "\n".join(_command(c) for c in issue.fix if c)
            )
        self.query_one("#trouble", Static).update("\n\n".join(parts))

    def _database(self, s) -> None:
        db = s.database
        if db is None:
            text = "[$text-muted]no \\[database] section for this environment[/]"
        elif db.error:
            text = f"[$error]{fmt.esc(db.error)}[/]"
        else:
            conf = self.live.env.database
            table = f"table {fmt.esc(conf.table)}" if conf else "the table"
            rows = "row count unknown" if db.rows is None else f"{db.rows} rows"
            lines = [f"[b]{table}[/b] ({rows}) — the columns and indexes a database rollback removes"]
            lines += [f"  {c}: {'[$success]present[/]' if p else '[$text-muted]absent[/]'}" for c, p in db.columns]
            lines += [f"  index {i}: {'present' if p else 'absent'}" for i, p in db.indexes]
            if db.dependents:
                lines.append("would go with the columns: " + ", ".join(fmt.esc(d) for d in db.dependents))
            if db.extra_dependents:
                lines.append(
                    "[$warning]beyond migration 004: " + ", ".join(fmt.esc(d) for d in db.extra_dependents) + "[/]"
                )
            text = "\n".join(lines)
        self.query_one("#database", Static).update(text)

    def action_rollback(self) -> None:
        self.app.action_rollback(self.live.env.name)

    def action_scroll(self, how: str) -> None:
        """Scroll the open tab's text (or table) from wherever the focus is."""
        tab = self.query_one("#env-tabs", TabbedContent).active
        target = self.query_one(SCROLLS[tab]) if tab in SCROLLS else None
        if target is None:
            table = {"tab-matrix": "#matrix", "tab-hosts": "#hosts"}.get(tab)
            target = self.query_one(table) if table else None
        if target is None:
            return
        getattr(target, f"scroll_{how}")(animate=False)

    async def action_probe(self) -> None:
        self.notify("probing…", timeout=1)
        await self.app.probe_now(self.live.env.name)


def _command(line: str) -> str:
    """A fix line: a command to run ($), or the runbook's comment about it."""
    if line.startswith("#"):
        return f"    [$text-muted]{fmt.esc(line)}[/]"
    return f"    $ {fmt.esc(line)}"


def _host(live: LiveEnvironment, name: str):
    return next((h for h in live.env.hosts if h.name == name), live.env.hosts[0])
