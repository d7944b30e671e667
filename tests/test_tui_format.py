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


async def test_no_color_is_honoured(monkeypatch, tmp_path) -> None:
    """With NO_COLOR set the screen is monochrome: every colour on it is a grey."""
    import re

    from screens.app import RollbackConsole
    from tests import tui_data

    monkeypatch.setenv("NO_COLOR", "1")
    app = RollbackConsole(
        tui_data.make_config(root=tmp_path / "fixed"), probe=False, clock=lambda: tui_data.T0, who=tui_data.WHO
    )
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


def test_hanging_lines_break_at_spaces_and_continue_under_their_own_indent() -> None:
    from rich.cells import cell_len

    from screens.widgets.hanging import hanging_breaks

    line = "       # Phase 4: recommendation system enhancements (quick rollback: master flag to false, restart)"
    offsets, indent = hanging_breaks(line, 60, 2)
    assert indent == 9
    parts = [line[a:b] for a, b in zip([0, *offsets], [*offsets, len(line)], strict=True)]
    assert "".join(parts) == line, "no character lost or added"
    assert all(p.rstrip().split(" ")[-1] in line.split() for p in parts), "whole words only"
    assert cell_len(parts[0].rstrip()) <= 60 and all(indent + cell_len(p.strip()) <= 60 for p in parts[1:])
    # A word wider than the room is folded; a too-deep indent is capped at half the width.
    offsets, indent = hanging_breaks("  " + "x" * 50, 20, 2)
    assert indent == 4 and offsets == [20, 36]
    assert hanging_breaks(" " * 30 + "a b", 20, 2)[1] == 10
    assert hanging_breaks("short", 20, 2) == ([], 2)


async def test_hanging_text_rewraps_when_the_terminal_is_resized_and_copies_as_written() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from screens.widgets.hanging import Hanging

    text = "PASS Feature flag status: log: Advanced: False, Time-weighting: False, Content-type: False"

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield Static(Hanging(fmt.esc(text), extra=5))

    def rows(app: App[None]) -> list[str]:
        static = app.query_one(Static)
        return [strip.text.rstrip() for strip in static.render_lines(static.content_region.reset_offset)]

    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        narrow = [r for r in rows(app) if r]
        assert narrow[0].startswith("PASS Feature flag status:") and len(narrow) == 3, narrow
        assert all(r.startswith("     ") and not r.startswith("      ") for r in narrow[1:]), narrow
        assert app.query_one(Static).size.height == 3, "the height counts the hung lines"
        await pilot.resize_terminal(70, 10)
        await pilot.pause()
        wide = [r for r in rows(app) if r]
        assert len(wide) == 2 and wide[1].startswith("     ") and wide[1].strip() in text, wide
        assert str(app.query_one(Static).render()) == text, "what is copied is the line as written"


async def test_the_run_log_wraps_its_lines_again_when_its_width_changes() -> None:
    """RichLog wraps a line once, as it is written: after the terminal was made wider a run's
    log still showed its lines broken at the old width, and after it was made narrower, cut."""
    from textual.app import App, ComposeResult

    from screens.widgets.run_view import REWRAP_AFTER_S, RunLog

    line = "12:00:01 ✓ Edit the env file: " + " ".join(f"word{i}" for i in range(30))

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield RunLog(id="run-output", max_lines=2000, markup=False, wrap=True, min_width=20)

    def rows(log: RunLog) -> list[str]:
        return [strip.text.rstrip() for strip in log.lines]

    async with One().run_test(size=(50, 20)) as pilot:
        log = pilot.app.query_one(RunLog)
        log.write(line)
        log.write("12:00:02 · short")
        await pilot.pause()
        narrow = rows(log)
        assert len(narrow) > 5 and all(len(r) <= 50 for r in narrow), narrow
        for width in (70, 90, 120):  # a drag: a burst of resizes, one wrap at the end
            await pilot.resize_terminal(width, 20)
        await pilot.pause(REWRAP_AFTER_S + 0.2)
        wide = rows(log)
        assert len(wide) < len(narrow) and max(len(r) for r in wide) > 60, wide
        assert wide[0].startswith("12:00:01 ✓ Edit") and wide[1].startswith(" " * 11) and wide[-1] == "12:00:02 · short"
        assert " ".join(" ".join(r.split()) for r in wide[:-1]) == " ".join(line.split()), "no word lost or doubled"
        await pilot.resize_terminal(40, 20)
        await pilot.pause(REWRAP_AFTER_S + 0.2)
        assert all(len(r) <= 40 for r in rows(log)), rows(log)
        assert log.scroll_y == log.max_scroll_y, "a log that followed its end still does"
        log.clear()
        await pilot.resize_terminal(80, 20)
        await pilot.pause(REWRAP_AFTER_S + 0.2)
        assert rows(log) == [], "cleared stays cleared"


async def test_show_with_and_without_a_hang_always_shows_the_latest_text() -> None:
    """One note shows NOT RUNNING (hung) then DRIFT (say, plain) then NOT RUNNING again: the
    third must not be skipped as "shown already" while DRIFT is on screen."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from screens.widgets.update import show

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("")

    async with One().run_test(size=(40, 6)) as pilot:
        note = pilot.app.query_one(Static)
        assert show(note, "NOT RUNNING on web-1", hang=2)
        assert not show(note, "NOT RUNNING on web-1", hang=2), "unchanged: no work"
        assert show(note, "DRIFT somewhere")
        await pilot.pause()
        assert str(note.render()) == "DRIFT somewhere"
        assert show(note, "NOT RUNNING on web-1", hang=2)
        await pilot.pause()
        assert str(note.render()) == "NOT RUNNING on web-1"
