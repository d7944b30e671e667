"""Choices whose state shows without colour: Textual's radio buttons draw ● and its
selection lists X whether chosen or not (only the colour differs). Here an unchosen one
is empty: ( ) / (●) and [ ] / [X] read the same on a monochrome terminal."""

from __future__ import annotations

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.widgets import RadioButton, SelectionList
from textual.widgets._toggle_button import ToggleButton


class MarkedRadioButton(RadioButton):
    BUTTON_LEFT = "("
    BUTTON_RIGHT = ")"

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble(self.BUTTON_LEFT, (self.BUTTON_INNER if self.value else " ", style), self.BUTTON_RIGHT)


class MarkedSelectionList(SelectionList[str]):
    def render_line(self, y: int) -> Strip:
        line = super().render_line(y)
        segments = list(line)
        inner = ToggleButton.BUTTON_INNER
        try:
            option = self.get_option_at_index(self.scroll_offset.y + y)
        except Exception:  # no option on this line
            return line
        if len(segments) < 3 or segments[1].text != inner:
            return line
        left, mid, right = segments[:3]
        chosen = option.value in self._selected
        segments[:3] = [
            Segment("[", left.style),
            Segment(inner if chosen else " ", mid.style),
            Segment("]", right.style),
        ]
        return Strip(segments, line.cell_length)
