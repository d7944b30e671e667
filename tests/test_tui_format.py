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


async def test_no_color_is_honoured(monkeypatch) -> None:
    """With NO_COLOR set the screen is monochrome: every colour on it is a grey."""
    import re

    from screens.app import RollbackConsole
    from tests import tui_data

    monkeypatch.setenv("NO_COLOR", "1")
    app = RollbackConsole(tui_data.make_config(), probe=False, clock=lambda: tui_data.T0, who=tui_data.WHO)
    async with app.run_test(size=(80, 24)) as pilot:
        tui_data.feed(app)
        await pilot.pause()
        svg = app.export_screenshot()
    colours = set(re.findall(r"#([0-9a-fA-F]{6})\b", svg))
    assert colours, "the screenshot has colours to check"

    def grey(c: str) -> bool:
        r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
        return max(r, g, b) - min(r, g, b) <= 8

    # The SVG frame's window buttons are the only colour the screenshot itself adds.
    assert {c for c in colours if not grey(c)} <= {"ff5f57", "febc2e", "28c840"}


def test_shared_columns_keep_their_longest_word_whole_while_there_is_room() -> None:
    from screens.widgets.tables import Column, widths

    columns = (Column("a", "A", 3), Column("b", "Symptom", weight=3), Column("c", "Seen", weight=4))
    rows = [("", "Incorrect recommendations", "only a person can judge")]
    # 40 cells: 2 x 3 padding and a scrollbar leave 32; the fixed column 3, so 29 to share.
    assert widths(40, columns) == [3, 12, 16], "by weight alone, 'recommendations' (15) would be cut"
    got = widths(40, columns, rows=rows)
    assert got[1] == 15 and sum(got[1:]) == 29, got
    # A hyphenated word is wrapped after a hyphen: its widest piece is what must fit.
    assert widths(40, columns, rows=[("", "partial-time-weighting", "x")])[1] == 12
    # Too narrow for every word whole: the shares, never a table wider than the screen.
    assert widths(24, columns, rows=rows) == [3, 6, 7]


def test_cells_wrap_at_spaces_and_after_hyphens_with_their_styles() -> None:
    from screens.widgets.tables import wrap

    cell = Text.from_markup("[b]partial-time-weighting[/b] when -5 is seen")
    got = wrap(cell, 13)
    assert got.plain == "partial-time-\nweighting\nwhen -5 is\nseen"
    assert got.spans[0].start == 0 and got.spans[-1].end == len("partial-time-\nweighting"), "bold kept"
    assert wrap(Text("recommendations"), 6).plain == "recommendations", "too wide for any break: left to Rich"
    assert wrap("not a Text", 3) == "not a Text"
