"""Remote text on screen: shown literally, never taken as markup."""

from __future__ import annotations

from rich.text import Text
from textual.markup import to_content

from screens import format as fmt


def test_log_lines_with_brackets_are_shown_as_they_are() -> None:
    line = "[INFO] analyticbot.api: [b]not bold[/b] [$error] $HOME [/]"
    assert to_content(fmt.esc(line)).plain == line
    assert Text.from_markup(fmt.esc(line)).plain == line


def test_sparkline_keeps_a_fixed_scale_and_colours_by_threshold() -> None:
    bars = fmt.sparkline([0.02, 1.0, 3.0, 6.0], ok=2.0, critical=5.0, width=10)
    plain = to_content(bars).plain
    assert plain[0] == "▁", "20 ms is a low bar, not a full one"
    assert plain[-1] == "█"
    assert "$success" in bars and "$warning" in bars and "$error" in bars
