"""Modal screens. Each shows exactly what will happen; Escape never does anything destructive."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeVar

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Static

from screens.format import esc, screen_text
from screens.widgets.hanging import Hanging

T = TypeVar("T")

if TYPE_CHECKING:  # the engine loads with the first run, not with the console
    from rich.console import RenderableType

    from console.engine.runner import Decision, Failure  # noqa: F401 - Decision: a string annotation


class RoomyModal(ModalScreen[T]):
    """A modal whose scrolling box (``.commands``) grows into the room the modal leaves.

    Textual sizes an auto-height modal by its box's whole content, then caps the box at its
    max-height: with a long plan at 80×24 the modal filled 90% of the screen while the box
    showed 10 lines above 4 empty rows. After each layout the box takes those rows (and any
    left below the modal's cap); on a resize it starts again from the stylesheet's cap.
    """

    def on_resize(self) -> None:
        self.query_one(".modal .commands").styles.max_height = None  # back to the stylesheet's cap
        self.call_after_refresh(self._fit_commands)

    def _fit_commands(self) -> None:
        # After the refresh this modal may be gone (answered at once: y, Esc): nothing to fit.
        if not self.is_attached or not self.is_current:
            return
        modal = self.query_one(".modal")
        box = modal.query_one(".commands")
        shown = [w for w in modal.children if w.display]
        if box.max_scroll_y == 0 or not shown:
            return  # the box shows all it holds
        used = max(w.region.bottom + w.styles.margin.bottom for w in shown)
        room_inside = modal.content_region.bottom - used
        cap = modal.styles.max_height
        limit = int(cap.resolve(self.size, self.app.size)) if cap is not None else self.size.height
        grow = room_inside + max(0, limit - modal.outer_size.height)
        if grow > 0:
            box.styles.max_height = box.outer_size.height + grow


_HUNK = re.compile(r"( *)@@ ")


def plan_parts(text: str) -> tuple[str, str, str, str]:
    """A plan preview cut for the confirmation: its header (title, target, notes), its steps
    up to the first changed line of a diff, that line and the changed lines after it, and the
    rest. A text that is not a preview is all steps; one without a diff has no change."""
    header, sep, steps = text.partition("\n\n1. ")
    header, steps = (header, "1. " + steps) if sep else ("", text)
    lines = steps.split("\n")
    hunk = next((m for m in map(_HUNK.match, lines) if m), None)
    if hunk is None:
        return header, steps, "", ""
    indent = hunk.group(1)  # a diff's lines sit at its hunk's indent: "-" or "+" there is a change

    def changed(line: str) -> bool:
        return line.startswith(indent) and line[len(indent) : len(indent) + 1] in ("-", "+")

    start = lines.index(hunk.string) + 1
    first = next((i for i in range(start, len(lines)) if changed(lines[i])), None)
    if first is None:
        return header, steps, "", ""
    end = first
    while end < len(lines) and changed(lines[end]):
        end += 1
    return header, "\n".join(lines[:first]), "\n".join(lines[first:end]), "\n".join(lines[end:])


class PlanBox(VerticalScroll):
    """The confirmation's box: tells its screen when its size changes (a Resize event goes
    only to the widget resized)."""

    def on_resize(self, event: events.Resize) -> None:
        self.post_message(PlanBox.Resized())

    class Resized(Message):
        pass


class ConfirmRollback(RoomyModal[bool]):
    """Shows the exact edits and commands; runs only on an explicit yes.

    Destructive plans also need the environment's name typed in.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        Binding("y", "confirm", "Run it", id="confirm.yes"),
    ]

    def __init__(
        self, title: str, environment: str, commands: str, *, destructive: bool = False, request_only: bool = False
    ) -> None:
        """``request_only``: nothing runs now; a second person must approve it first."""
        super().__init__()
        self.title_text, self.environment, self.commands, self.destructive = title, environment, commands, destructive
        self.request_only = request_only
        self._scrolled_to = 0  # where the box was put to show the change; the operator's scroll wins
        self._hint = (
            "This is exactly what will run once a second person approves it"
            if request_only
            else "This is exactly what will run"
        )

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal" + (" -danger" if self.destructive else "")):
            yield Static(f"[b]{esc(self.title_text)}[/b] on [b]{esc(self.environment)}[/b]")
            yield Static(f"{self._hint}:", classes="hint")
            with PlanBox(classes="commands"):
                # In parts, so the box can open at the change; a wrapped diff line stays in its column.
                header, lead, change, rest = plan_parts(self.commands)
                if header:
                    yield Static(Hanging(esc(header)), classes="plan-header")
                yield Static(Hanging(esc(lead)), classes="plan-steps" + (" -after-header" if header else ""))
                if change:
                    yield Static(Hanging(esc(change)), classes="plan-change")
                if rest:
                    yield Static(Hanging(esc(rest)))
            if self.destructive:
                yield Static(f"[$error]DESTRUCTIVE.[/] Type [b]{esc(self.environment)}[/b] to confirm:")
                yield Input(placeholder=self.environment, id="typed")
            with Horizontal(classes="buttons"):
                yield Button("Cancel (Esc)", id="cancel")
                yield Button(
                    "Request approval (y)" if self.request_only else "Run it (y)",
                    id="confirm",
                    variant="error" if self.destructive else "primary",
                )

    def on_mount(self) -> None:
        self.watch(self.query_one(PlanBox), "scroll_y", self._say_what_is_above, init=False)
        if self.destructive:
            self.query_one("#typed", Input).focus()
        else:
            self.query_one("#confirm", Button).focus()

    def _say_what_is_above(self, scroll_y: float) -> None:
        self.query_one(".hint", Static).update(
            f"{self._hint} (more above: scroll up):" if scroll_y else f"{self._hint}:"
        )

    @on(PlanBox.Resized)
    def _box_resized(self) -> None:
        # The box grows after the modal's first layout (RoomyModal): place the change again.
        self.call_after_refresh(self._open_at_the_change)

    def _open_at_the_change(self) -> None:
        """At 80×24 a plan's header (its title, target, notes) and a diff's headers filled the
        box, and the lines that change were below its fold. When they would be, the box opens
        with the first changed lines at its foot and as much as fits above them; the rest is a
        scroll away (the hint says when some is above). Kept so as the box grows or the
        terminal is resized, until the operator scrolls it themselves."""
        if not self.is_attached or not self.is_current:
            return
        box = self.query_one(PlanBox)
        changes = self.query(".plan-change")
        if not changes or box.scroll_y != self._scrolled_to:
            return
        change = changes.first().virtual_region
        room = box.scrollable_content_region.height
        y = (
            0
            if change.bottom <= room
            else min(change.y, max(self.query_one(".plan-steps").virtual_region.y, change.bottom - room))
        )
        if y != box.scroll_y:
            box.scroll_to(y=y, animate=False, immediate=True)
        self._scrolled_to = box.scroll_y  # (clamped to what the box can scroll now)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_confirm(self) -> None:
        if self.destructive and self.query_one("#typed", Input).value.strip() != self.environment:
            self.notify(f"type {self.environment} to confirm a destructive rollback", severity="error")
            return
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        self.action_confirm()

    @on(Input.Submitted, "#typed")
    def _typed(self) -> None:
        self.action_confirm()


class StepFailedModal(RoomyModal["Decision"]):
    """A step failed: retry, apply the runbook's fix, skip with a reason, undo, or abort.

    There is no Escape here: the run waits for a choice.
    """

    AUTO_FOCUS = "Button"  # never the reason box: a typed r/u/a must choose, not type

    BINDINGS = [
        Binding("r", "choose('retry')", "Retry", id="failed.retry"),
        Binding("f", "choose('fix')", "Fix", id="failed.fix"),
        Binding("s", "choose('skip')", "Skip…", id="failed.skip"),
        Binding("u", "choose('undo')", "Undo", id="failed.undo"),
        Binding("a", "choose('abort')", "Abort", id="failed.abort"),
    ]

    def __init__(self, failure: Failure, operator: str) -> None:
        super().__init__()
        self.failure = failure
        self.operator = operator

    def compose(self) -> ComposeResult:
        f = self.failure
        with Vertical(classes="modal -danger"):
            yield Static(f"[$error b]✗ {esc(f.step.title)} failed[/]")
            with VerticalScroll(classes="commands"):
                lines = []
                for host, failure in f.hosts.items():
                    where = "" if host == "*" else f"[b]{esc(host)}[/b]: "
                    lines.append(f"{where}{esc(failure)}")
                    if failure.troubleshooting:
                        lines.append(f"  runbook troubleshooting — {esc(failure.troubleshooting)}")
                    if failure.output:
                        output = self.app.redact(failure.output) if hasattr(self.app, "redact") else failure.output
                        lines.extend(f"  │ {esc(x)}" for x in output.splitlines()[-12:])
                if f.not_started:
                    lines.append(f"not started: {esc(', '.join(f.not_started))}")
                remedy = next((x.remedy for x in f.hosts.values() if x.remedy), None)
                if remedy:
                    heading = f" ({esc(remedy.troubleshooting)})" if remedy.troubleshooting else ""
                    lines.append(f"\n[b]known fix[/b]{heading}: {esc(remedy.title)}")
                    lines.extend(f"  $ {esc(c)}" for c in remedy.commands)
                yield Static("\n".join(lines))
            yield Input(placeholder="reason for skipping (required to skip)", id="reason")
            with Horizontal(classes="buttons -many"):
                yield Button("Retry (r)", id="retry", variant="primary", compact=True)
                if f.fixable:
                    yield Button("Apply fix (f)", id="fix", variant="warning", compact=True)
                yield Button("Skip (s)", id="skip", compact=True)
                yield Button("Undo (u)", id="undo", variant="error", compact=True)
                yield Button("Abort (a)", id="abort", compact=True)

    def on_mount(self) -> None:
        self.query_one("#fix" if self.failure.fixable else "#retry", Button).focus()

    def action_choose(self, kind: str) -> None:
        from console.engine.runner import Decision

        if kind == "fix" and not self.failure.fixable:
            return
        if kind == "skip":
            reason = self.query_one("#reason", Input).value.strip()
            if not reason:
                self.query_one("#reason", Input).focus()
                self.notify("type why you skip this step, then press s or Enter", severity="warning")
                return
            self.dismiss(Decision("skip", reason, by=self.operator))
            return
        self.dismiss(Decision(kind, by=self.operator))  # type: ignore[arg-type]

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id:
            self.action_choose(event.button.id)

    @on(Input.Submitted, "#reason")
    def _reason(self) -> None:
        self.action_choose("skip")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Letters typed into the reason box are text, not choices.
        if isinstance(self.focused, Input) and action == "choose":
            return False
        return True


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text (e.g. a note for a checklist tick). Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, question: str, placeholder: str = "") -> None:
        super().__init__()
        self.question, self.placeholder = question, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(esc(self.question))
            yield Input(placeholder=self.placeholder, id="answer")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _done(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class InterruptedRun(ModalScreen[str]):
    """At start-up: a run a crash or kill -9 cut off. Resume it, undo it, or decide later."""

    BINDINGS = [
        Binding("escape", "choose('later')", "Later", id="interrupted.later"),
        Binding("r", "choose('resume')", "Resume", id="interrupted.resume"),
        Binding("u", "choose('undo')", "Undo", id="interrupted.undo"),
    ]

    def __init__(self, summary: str) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal -danger"):
            yield Static("[$warning b]An interrupted rollback was found in the journal[/]")
            yield Static(esc(self.summary))
            yield Static("Resume finishes it from where it stopped; undo puts back what it changed.", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Later (Esc)", id="later")
                yield Button("Undo (u)", id="undo", variant="error")
                yield Button("Resume (r)", id="resume", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#resume", Button).focus()

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "later")


# "  label    value": a scorecard's or a list's line, its value in a column of its own.
_LABELLED = re.compile(r"^(  \S(?:.*?\S)?)\s{2,}(\S.*)$")


def labelled(text: str) -> RenderableType:
    """Text whose "  label    value" lines keep their values in one column when they wrap
    (wrapped as plain text, a long value ran back under the labels)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[RenderableType] = []
    grid: Table | None = None
    for line in screen_text(text).splitlines():
        found = _LABELLED.match(line)
        if found is None:
            grid = None
            parts.append(Text(line))
            continue
        if grid is None:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(no_wrap=True)
            grid.add_column()
            parts.append(grid)
        grid.add_row(Text(found[1]), Text(found[2]))  # Text, not str: a table reads a str as markup
    return Group(*parts)


class TextModal(RoomyModal[None]):
    """A block of text to read (a drill briefing, a scorecard); Enter or Esc closes it."""

    BINDINGS = [Binding("escape,enter", "close", "Close", id="text.close")]

    def __init__(self, title: str, body: str, button: str = "OK (Enter)") -> None:
        super().__init__()
        self.title_text, self.body, self.button = title, body, button

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(f"[b]{esc(self.title_text)}[/b]")
            with VerticalScroll(classes="commands"):
                yield Static(labelled(self.body))
            with Horizontal(classes="buttons"):
                yield Button(self.button, id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(None)


class Choice(ModalScreen[bool]):
    """A yes/no question before something that cannot be taken back (quitting mid-run),
    or that the operator may not expect (leaving a running rollback's screen).
    y answers yes; Escape, n and the focused first button keep things as they are."""

    AUTO_FOCUS = "#no"
    BINDINGS = [
        Binding("escape,n", "answer(False)", "No", id="choice.no"),
        Binding("y", "answer(True)", "Yes", id="choice.yes"),
    ]

    def __init__(self, title: str, text: str, *, yes: str, no: str = "Stay (Esc)") -> None:
        super().__init__()
        self.title_text, self.text, self.yes, self.no = title, text, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal -danger"):
            yield Static(f"[$warning b]{esc(self.title_text)}[/]")
            yield Static(esc(self.text))
            with Horizontal(classes="buttons"):
                yield Button(self.no, id="no", variant="primary")
                yield Button(self.yes, id="yes", variant="error")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class KeysScreen(RoomyModal[None]):
    """Every key of the screen below, the footer's and the rest (F1). Escape or F1 closes."""

    BINDINGS = [Binding("escape,f1", "close", "Close", id="keys.close")]

    def __init__(self, rows: list[tuple[str, str]], where: str) -> None:
        super().__init__()
        self.rows, self.where = rows, where

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _ in self.rows), default=4)
        lines = [f"[b $accent]{esc(k):>{width}}[/]  {esc(d)}" for k, d in self.rows]
        lines.append(f"\n[$text-muted]{'':>{width}}  letters typed in a field are text, never keys[/]")
        with Vertical(classes="modal"):
            yield Static(f"[b]Keys[/b] — {esc(self.where)}  (↑↓ to scroll, Esc to close)")
            with VerticalScroll(classes="commands", id="keys-list"):
                yield Static("\n".join(lines))

    def on_mount(self) -> None:
        self.query_one("#keys-list").focus()

    def action_close(self) -> None:
        self.dismiss(None)


def screen_keys(app: App, screen: Screen) -> list[tuple[str, str]]:
    """(keys, what) for every binding active on ``screen``, as the key help lists them."""
    by_action: dict[str, tuple[list[str], str]] = {}
    # The console's own keys first; Textual's scrolling and focus keys after them.
    ours = sorted(
        screen.active_bindings.items(),
        key=lambda item: not (item[1].node is app or type(item[1].node).__module__.startswith("screens")),
    )
    for _key, active in ours:
        binding = active.binding
        if binding.system or not (binding.description or binding.tooltip):
            continue
        what = binding.description + ("" if active.enabled else " (not now)")
        keys, _ = by_action.setdefault(f"{id(active.node)}:{binding.action}", ([], what))
        display = app.get_key_display(binding)
        if display not in keys:
            keys.append(display)
    return [(" ".join(keys), what) for keys, what in by_action.values()]
