"""The modals' scrolling box uses the room the modal has: at 80×24 "exactly what will run"
shows as many lines as fit, the buttons stay on screen, and a short plan keeps a small modal."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.widget import Widget

from screens.modals import ConfirmRollback, KeysScreen, RoomyModal, plan_parts
from tests.screen_text import screen_text
from themes import CSS_PATH


class Host(App):
    """Only a place for the console's modals, with the console's stylesheet."""

    CSS_PATH = str(CSS_PATH)


def plan(lines: int) -> str:
    return "\n".join(f"$ step {i}" for i in range(lines))


def parts(modal: RoomyModal) -> tuple[Widget, Widget, Widget]:
    return modal.query_one(".modal"), modal.query_one(".modal .commands"), modal.query_one(".modal .buttons")


async def settle(pilot) -> None:
    for _ in range(3):
        await pilot.pause()


def assert_no_empty_rows_and_buttons_shown(modal: RoomyModal, screen_height: int) -> None:
    frame, box, buttons = parts(modal)
    assert buttons.region.bottom == frame.content_region.bottom, "empty rows below the buttons"
    assert frame.region.bottom <= screen_height
    assert box.max_scroll_y > 0  # the plan is longer than the room: it scrolls, nothing is cut


@pytest.mark.parametrize("destructive", [False, True])
async def test_a_long_plan_fills_the_modal_at_80x24(destructive: bool) -> None:
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        modal = ConfirmRollback("Quick rollback", "staging", plan(60), destructive=destructive)
        app.push_screen(modal)
        await settle(pilot)
        frame, box, _ = parts(modal)
        assert frame.outer_size.height == 21  # the modal's cap: 90% of 24 rows
        assert_no_empty_rows_and_buttons_shown(modal, 24)
        # Title, hint and buttons (and the typed name) take the rest: 14 rows of box, 10 when destructive.
        assert box.outer_size.height == (10 if destructive else 14)
        if destructive:
            typed = modal.query_one("#typed")
            assert frame.content_region.contains_region(typed.region)


async def test_a_short_plan_keeps_a_small_modal() -> None:
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        modal = ConfirmRollback("Quick rollback", "staging", plan(3))
        app.push_screen(modal)
        await settle(pilot)
        frame, box, buttons = parts(modal)
        assert box.max_scroll_y == 0 and box.outer_size.height == 5  # three lines and the border
        assert frame.outer_size.height < 21
        assert buttons.region.bottom == frame.content_region.bottom


async def test_after_a_resize_the_box_fits_the_new_height() -> None:
    app = Host()
    async with app.run_test(size=(80, 40)) as pilot:
        modal = ConfirmRollback("Quick rollback", "staging", plan(60))
        app.push_screen(modal)
        await settle(pilot)
        assert parts(modal)[1].outer_size.height == 29  # 36 rows of modal at 40
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert_no_empty_rows_and_buttons_shown(modal, 24)
        assert parts(modal)[1].outer_size.height == 14
        await pilot.resize_terminal(80, 40)
        await settle(pilot)
        assert_no_empty_rows_and_buttons_shown(modal, 40)


async def test_the_key_help_uses_the_screen_too() -> None:
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        rows = [(f"k{i}", f"key number {i}") for i in range(60)]
        modal = KeysScreen(rows, "dashboard")
        app.push_screen(modal)
        await settle(pilot)
        frame = modal.query_one(".modal")
        box = modal.query_one(".modal .commands")
        assert frame.outer_size.height == 21
        assert box.region.bottom == frame.content_region.bottom  # no buttons here: the list reaches the border


@pytest.mark.parametrize("key", ["y", "escape"])
async def test_answered_before_its_first_refresh_the_modal_leaves_cleanly(key: str) -> None:
    """The fit runs after a refresh; a modal answered before that (y or Esc typed at once) is
    gone by then, and the console goes on (it crashed here once: max() of nothing)."""
    answers: list[bool | None] = []
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(5):
            app.push_screen(ConfirmRollback("Quick rollback", "staging", plan(60)), answers.append)
            await pilot.press(key)
            await settle(pilot)
        assert answers == [key == "y"] * 5
        assert app.screen is app.screen_stack[0]
    assert app.return_code in (None, 0)


async def test_a_scorecards_long_values_wrap_in_their_own_column_at_80x24() -> None:
    """ "  label    value" lines (a drill's scorecard): a value too long for the line goes on
    under itself, not back under the labels."""
    from screens.modals import TextModal

    card = (
        "Drill scorecard — Flags changed but nothing changed\n"
        "  action      RIGHT: expected quick; first chose quick; recovered by quick\n"
        "  score       87/100\n"
        "  lesson      After a restart, check the process environment, not just the env file: a restart "
        "that keeps the old environment needs a forced fresh start (troubleshooting 1).\n"
        "  note        [b]not markup[/b] [red]"
    )
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TextModal("Drill scorecard", card, "Finish (Enter)"))
        await settle(pilot)
        shown = screen_text(app).splitlines()
        row = next(i for i, line in enumerate(shown) if "action" in line and "RIGHT" in line)
        at = shown[row].index("RIGHT")

        def under_its_value(i: int) -> bool:  # nothing under the labels, the text in the value's column
            return shown[i][:at].strip("│█ ") == "" and shown[i][at] != " "

        assert under_its_value(row + 1)
        action = " ".join(line[at:].strip("│█ ") for line in shown[row : row + 2])
        assert "RIGHT: expected quick; first chose quick; recovered by quick" in action
        lesson = next(i for i, line in enumerate(shown) if "lesson" in line)
        assert shown[lesson].index("After") == at and under_its_value(lesson + 1)
        assert "[b]not markup[/b] [red]" in screen_text(app), "a value is text, never markup"


PLAN = """Quick rollback: disable all advanced features  [production]
  runbook target: < 1 min · data loss: None · reversible: Yes (re-enable flags)
  note: System reverts to legacy behaviour: no advanced fields in the response.

1. Edit the env file
   on web-1, web-2:
     --- /opt/analyticbot/.env.production (now)
     +++ /opt/analyticbot/.env.production (after)
     @@ -3,6 +3,6 @@
      DATABASE_URL=…  (value not shown)

      # Phase 4
     -ENABLE_ADVANCED_RECOMMENDATIONS=true
     -ENABLE_TIME_WEIGHTING=true
     -ENABLE_CONTENT_TYPE_ANALYSIS=true
     +ENABLE_ADVANCED_RECOMMENDATIONS=false
     +ENABLE_TIME_WEIGHTING=false
     +ENABLE_CONTENT_TYPE_ANALYSIS=false

2. Restart the API
   on web-1, web-2:
     $ sudo systemctl restart analyticbot-api
""" + "".join(f"\n{i}. step {i}\n     $ true\n" for i in range(3, 9))


async def test_the_confirmation_keeps_the_change_in_view_until_the_operator_scrolls() -> None:
    changed = ["-ENABLE_ADVANCED_RECOMMENDATIONS=true", "+ENABLE_ADVANCED_RECOMMENDATIONS=false"]
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        modal = ConfirmRollback("Quick rollback", "production", PLAN)
        app.push_screen(modal)
        await settle(pilot)
        shown = screen_text(app)
        assert all(line in shown for line in changed) and "+ENABLE_CONTENT_TYPE_ANALYSIS=false" in shown
        assert "(more above: scroll up)" in shown and "runbook target" not in shown
        await pilot.resize_terminal(80, 30)  # the box grows: the change stays in view
        await settle(pilot)
        assert "+ENABLE_CONTENT_TYPE_ANALYSIS=false" in screen_text(app)
        box = parts(modal)[1]
        box.scroll_home(animate=False)  # the operator reads from the top; a resize leaves it there
        await settle(pilot)
        await pilot.resize_terminal(80, 26)
        await settle(pilot)
        shown = screen_text(app)
        assert box.scroll_y == 0 and "runbook target" in shown and "(more above" not in shown, "nothing is above"


async def test_a_plan_with_nothing_to_change_opens_at_its_summary() -> None:
    text = (
        PLAN.split("\n\n1. ")[0]
        + "\n  NOTHING TO CHANGE: every step below is already done; running it would change nothing."
    )
    text += "".join(f"\n\n{i}. step {i}\n     # already so" for i in range(1, 12))
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        modal = ConfirmRollback("Quick rollback", "production", text)
        app.push_screen(modal)
        await settle(pilot)
        assert parts(modal)[1].scroll_y == 0 and "NOTHING TO CHANGE" in screen_text(app)


def test_only_a_diffs_own_lines_count_as_the_change() -> None:
    """A step's own text may start with "-" (an SQL comment, an option), and a diff's context
    line may hold a "-" after its leading space: neither is the change the box opens at."""
    sql = "1. Drop the columns\n   on db:\n     -- 004 down\n     ALTER TABLE posts DROP COLUMN has_video;"
    assert plan_parts("Database rollback  [production]\n\n" + sql) == (
        "Database rollback  [production]",
        sql,
        "",
        "",
    )
    header, lead, change, rest = plan_parts(PLAN.replace("      DATABASE_URL=", "      -DATABASE_URL="))
    assert header.startswith("Quick rollback") and lead.endswith("      # Phase 4")
    assert change.splitlines() == [
        f"     {sign}ENABLE_{flag}={value}"
        for sign, value in (("-", "true"), ("+", "false"))
        for flag in ("ADVANCED_RECOMMENDATIONS", "TIME_WEIGHTING", "CONTENT_TYPE_ANALYSIS")
    ]
    assert rest.startswith("\n2. Restart the API")
    assert "\n\n".join([header, "\n".join([lead, change, rest])]) == PLAN.replace(
        "      DATABASE_URL=", "      -DATABASE_URL="
    ), "the parts are the plan, byte for byte"
