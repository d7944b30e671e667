"""The footer every screen uses: compact, so that a screen's keys fit in 80 columns
(whatever does not fit is in the key help, F1)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer


class ConsoleFooter(Footer):
    """Textual's footer rebuilds its keys whenever the bindings might have changed — on
    every focus move and screen switch. This one rebuilds only when the keys it would
    show differ from those it shows (↓ between panels changes nothing here)."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._keys_shown: tuple | None = None

    def _wanted(self) -> tuple:
        return tuple(
            (binding, enabled, tooltip, self.app.get_key_display(binding))
            for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
        )

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._keys_shown = self._wanted()
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            # As Textual's: looked at after the refresh, when the focus has settled.
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        if self.is_attached and self._keys_shown != self._wanted():
            await self.recompose()
