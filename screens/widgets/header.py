"""The header every screen uses: Textual's, except that the title line — one line that
never wraps, its size fixed by the header — is repainted without a layout pass of the
whole screen each time it changes (the subtitle's clock changes every second)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.visual import VisualType
from textual.widgets import Header
from textual.widgets._header import HeaderTitle


class _Title(HeaderTitle):
    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        super().update(content, layout=False)


class ConsoleHeader(Header):
    def compose(self) -> ComposeResult:
        for widget in super().compose():
            yield _Title() if type(widget) is HeaderTitle else widget
