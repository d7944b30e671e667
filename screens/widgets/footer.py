"""The footer every screen uses: compact, so that a screen's keys fit in 80 columns
(whatever does not fit is in the key help, F1)."""

from __future__ import annotations

from textual.widgets import Footer


class ConsoleFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)
