"""Snapshots as console markup. Remote text is always escaped; colours are theme variables."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rich.errors import MarkupError
from rich.text import Text
from textual.app import App

from console.config.model import Environment, Thresholds
from console.flags import FlagSet
from console.probes.logs import LogRules
from console.probes.series import LatencySeries
from console.probes.snapshot import EnvironmentSnapshot, HostSnapshot
from console.profile.model import Flag, FlagRules
from console.runbook.matrix import Recommendation, memory_level
from console.safe_text import clean
from console.safe_text import markup as safe_markup

SEVERITY_STYLE = {"HIGH": "$error", "MEDIUM": "$warning", "LOW": "$accent"}
SOURCES = (("env file", "env_file"), ("process", "process"), ("log", "log"))


# Code points whose width terminals and Rich disagree on: a variation selector (the
# service's own "🎛️" is U+1F39B U+FE0F: Rich counts 2 cells, tmux and most terminals 1),
# a zero-width joiner, skin-tone modifiers, tag characters. Without them every terminal
# and Rich agree, and no border is pushed out of line.
_WIDTH_TRAPS = re.compile("[\ufe00-\ufe0f\u200d\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")


def screen_text(text: object) -> str:
    """Text from a host as the screen shows it: control characters visible, width traps gone."""
    return clean(_WIDTH_TRAPS.sub("", str(text)))


def counted(n: int, noun: str) -> str:
    """ "1 run", "3 runs": a count as a person writes it."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def env_title(env: Environment) -> str:
    """An environment in a screen's title: its kind only where the name does not say it
    (at 80 columns "staging (staging)" pushed the header's clock off the line)."""
    return env.name if env.name == env.kind else f"{env.name} ({env.kind})"


def esc(text: object) -> str:
    """Text from outside, safe to show as markup (console.safe_text.markup: controls and bidi
    characters shown escaped, every "[" escaped: textual.markup.escape leaves "[INFO]" alone,
    which the parser then eats as a tag), with the width traps gone."""
    return safe_markup(_WIDTH_TRAPS.sub("", str(text)))


def at(ts: float | None) -> str:
    """A moment as the console shows it: 18:33:21 (UTC, like the header)."""
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def seconds(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}s"


def consensus(s: EnvironmentSnapshot, source: str, flag: Flag) -> tuple[bool | None, bool]:
    """One source's value of a flag across hosts: (value or None if mixed/unknown, drifted?)."""
    values = []
    drift = False
    for h in s.reachable_hosts:
        fs = getattr(h.flags, source)
        if fs is not None:
            values.append(fs.get(flag.id))
        drift = drift or any(d.flag == flag.env for d in h.flags.drift)
    known = set(values)
    return (values[0] if len(known) == 1 else None), drift or len(known) > 1


# Columns per flag (its cell and the space after it): the grid stays within its 36 columns
# of the dashboard's panel (themes: EnvPanel .flags), so 80×24 keeps the rest for the metrics.
COLUMN_FOR = {2: 8, 3: 8, 4: 6, 5: 5, 6: 4}


def flag_width(rules: FlagRules) -> int:
    """A flag's column: 8 for up to three flags, narrower for more, so six fit the grid."""
    return COLUMN_FOR.get(len(rules.flags), 4)


def flag_table(s: EnvironmentSnapshot | None, rules: FlagRules) -> str:
    """A small grid: rows are the three sources, columns the profile's flags; drift in reverse."""
    w = flag_width(rules)
    mark = min(5, w - 1)  # what a drifted cell highlights
    head = "[b]flags[/b]     " + "".join(f"{esc(f.column[: w - 1]):<{w - 1}} " for f in rules.flags)
    rows = [head.rstrip()]
    for label, source in SOURCES:
        cells = []
        for flag in rules.flags:
            if s is None:
                cells.append(f"{'…':<{w}}")
                continue
            value, drift = consensus(s, source, flag)
            text = {True: "on", False: "off", None: "?"}[value]
            style = "$text" if value else "$text-muted"
            if drift:
                style = "reverse $warning"
            cells.append(f"[{style}]{text:<{mark}}[/]" + " " * (w - mark))
        rows.append(f"{label:<9} " + "".join(cells))
    return "\n".join(rows)


def health_line(s: EnvironmentSnapshot) -> str:
    """Each of the profile's health endpoints: liveness by its path, readiness as "ready"."""
    hosts = s.reachable_hosts
    if not hosts:
        return "[$error]health   unreachable[/]"
    n = len(s.hosts)
    roles: dict[str, tuple[str, int]] = {}  # role → (label, hosts where it answered ok)
    for h in hosts:
        for e in h.health.endpoints:
            label, ok = roles.get(e.role, ("ready" if e.role == "readiness" else e.endpoint, 0))
            roles[e.role] = (label, ok + (e.ok is True))
    if not roles:
        return f"health   [$error]{esc(hosts[0].health.error or 'not measured')[:60]}[/]"
    cells = []
    for label, ok in roles.values():
        style = "$success" if ok == n else "$error"
        count = ("✓" if ok else "✗") if n == 1 else f"{ok}/{n}"
        cells.append(f"[{style}]{esc(label)} {count}[/]")
    text = "health   " + "  ".join(cells)
    if any(h.health.disagree for h in hosts):
        text += "  [reverse $warning] disagree [/]"
    return text


def latency_line(
    s: EnvironmentSnapshot, p50: float | None, p95: float | None, t: Thresholds, critical: float, over: str = ""
) -> str:
    """Latency now, and p50/p95 of some rounds; ``over`` says which (a span, rounds answered)."""
    now = s.response_time_s
    style = (
        "$success"
        if now is not None and now < t.response_time_ok_s
        else ("$warning" if now is not None and now < critical else "$error")
    )
    said = f"[{style}]{seconds(now)}[/] p50 {seconds(p50)} p95 {seconds(p95)}"
    return f"{said} [$text-muted]{over}[/]" if over else said


def errors_line(s: EnvironmentSnapshot) -> str:
    lines = sum(h.logs.error_lines for h in s.reachable_hosts)
    window = max((h.logs.window for h in s.reachable_hosts), default=0)
    rate = s.error_rate
    style = "$success" if not lines else "$error"
    rate_text = "—" if rate is None else f"{rate:.0%}"
    return f"errors   [{style}]{lines} ERROR[/] in last {window} · rate {rate_text}"


def memory_line(s: EnvironmentSnapshot, t: Thresholds) -> str:
    mb = s.memory_mb
    level = memory_level(t, mb)
    style = {"ok": "$success", "warn": "$warning", "high": "$error"}.get(level, "$text-muted")
    return "memory   " + ("—" if mb is None else f"[{style}]{mb:.0f} MB[/] ({level})")


def recommendation_line(rec: Recommendation | None) -> str:
    if rec is None:
        return "[$text-muted]assessing…[/]"
    unknown = ""
    if rec.problems:  # never "no action" on what could not be measured: the loudest words here
        more = f" [$text-muted](+{len(rec.problems) - 1} more)[/]" if len(rec.problems) > 1 else ""
        unknown = f"[reverse $error] CANNOT ASSESS [/] [b $error]{esc(rec.problems[0][:160])}[/]{more}"
    if rec.action is None:
        if not unknown and rec.symptoms:
            return f"[reverse $warning] INVESTIGATE [/] [b]{esc(rec.symptoms[0][:160])}[/] — not in the decision matrix"
        return unknown or "[$success]● no action[/] — no symptom in the decision matrix"
    style = SEVERITY_STYLE.get(rec.severity or "", "$warning")
    line = f"[reverse {style}] {rec.severity} [/] [b]{esc(rec.title)}[/b] {esc(rec.timeline)} — {esc(rec.symptom)}"
    if rec.in_effect:  # running it again would change nothing: the runbook's next step is to escalate
        said = "the flags are as it sets them, yet the symptom is there: escalate (e)"
        line += f"\n[reverse $warning] ALREADY IN EFFECT [/] [b]{said}[/]"
    elif rec.in_files:
        said = f"its flags are in every env file, but {rec.not_taken_said}: restart it (Troubleshooting)"
        line += f"\n[reverse $warning] IN THE ENV FILE ALREADY [/] [b]{said}[/]"
    return f"{line}\n{unknown}" if unknown else line


def log_line(line: str, rules: LogRules, limit: int = 160) -> str:
    """One log line, escaped; flag lines and errors (as the profile tells them) stand out."""
    text = esc(line[:limit])
    if rules.is_error(line):
        return f"[$error]{text}[/]"
    if rules.is_flag_line(line):
        return f"[b $accent]{text}[/]"
    return f"[$text-muted]{text}[/]"


def host_row(h: HostSnapshot, t: Thresholds, rules: FlagRules) -> tuple[str, ...]:
    """One row of the per-host grid."""
    if h.unreachable:
        return (h.host, "[$error]unreachable[/]", "", "", "", "", esc(h.unreachable)[:60])

    def flags(fs: FlagSet | None) -> str:
        return fs.bits() if fs is not None else "?" * len(rules.flags)

    f = h.flags
    drift = "[reverse $warning]drift[/]" if f.drift else "ok"
    r = h.probe
    health = "[$success]✓[/]" if h.health.healthy else "[$error]✗[/]"
    latency = seconds(r.latency_s)
    mem = "—" if h.memory.rss_mb is None else f"{h.memory.rss_mb:.0f}MB"
    return (
        h.host,
        health,
        f"{flags(f.env_file)}/{flags(f.process)}/{flags(f.log)} {drift}",
        latency,
        str(h.logs.error_lines),
        mem,
        esc((r.message if r.failed else None) or r.problem or "")[:60],
    )


_TAG = re.compile(r"(?<!\\)\[([^\[\]]*)\]")
_VAR = re.compile(r"\$([a-z][a-z-]*)")


def rich_style(app: App, name: str) -> str:
    """A theme variable as a Rich style, for widgets that render Rich markup (DataTable)."""
    if name in ("text-muted", "text-disabled"):
        return "dim"
    if name == "text":
        return ""
    value = str(app.theme_variables.get(name, ""))
    if value.startswith("ansi_"):
        return value.removeprefix("ansi_")
    return value


def cell(app: App, markup: str) -> Text:
    """Console markup (with $theme variables) as a Rich Text for a DataTable cell."""

    def tag(m: re.Match[str]) -> str:
        inner = _VAR.sub(lambda v: rich_style(app, v.group(1)), m.group(1)).strip()
        return f"[{inner}]" if inner else "[not dim]"

    try:
        return Text.from_markup(_TAG.sub(tag, markup))
    except MarkupError:
        return Text(markup)


_BARS = "▁▂▃▄▅▆▇█"


def rounds_over(series: LatencySeries) -> str:
    """When some rounds had no answer, what a series' p50/p95 are of: "(8 of 38 rounds
    answered in 3 min)". Otherwise nothing: the chart below shows the window, and at 80 columns the
    header has no room to spare."""
    points = series.points
    answered = len(series.values)
    if len(points) < 2 or answered == len(points):
        return ""
    return f"({answered} of {len(points)} rounds answered in {window(points[-1][0] - points[0][0])})"


def window(seconds: float) -> str:
    """How long a series of rounds spans, in a few cells: 45 s, 12 min, 3 h."""
    if seconds < 89.5:
        return f"{max(0, round(seconds))} s"
    if seconds < 59.5 * 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def sparkline(values: list[float | None], ok: float, critical: float, width: int) -> str:
    """Latency bars on a fixed scale (0 to just above the critical line), coloured by threshold;
    a round without a latency (None) is a gap, "·".

    Textual's Sparkline scales to its own min and max, which makes 20 ms look like 5 s;
    an operator needs the thresholds to stay put.
    """
    if not values:
        return "[$text-muted]" + "·" * max(1, width) + "[/]"
    ceiling = critical * 1.2
    out = []
    for v in values[-width:]:
        if v is None:
            out.append("[$text-muted]·[/]")
            continue
        level = min(len(_BARS) - 1, int(v / ceiling * (len(_BARS) - 1) + 0.5))
        style = "$success" if v < ok else ("$warning" if v < critical else "$error")
        out.append(f"[{style}]{_BARS[level]}[/]")
    return "".join(out)
