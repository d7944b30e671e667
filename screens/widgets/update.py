"""Updating text on screen without needless work: unchanged text is not re-rendered, and a
change that cannot change the widget's size is repainted without a layout pass of the
whole screen (which costs as much as redrawing every widget on it)."""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import Static

from screens.widgets.hanging import Hanging


def show(widget: Static, content: str, *, layout: bool | None = None, hang: int | None = None) -> bool:
    """Show ``content`` (markup, or plain text for a Static without markup) in ``widget``;
    False when it shows it already.

    ``layout``: None decides — none when the widget's height and width are fixed by CSS, or
    when the new text has the same line widths as the one shown and no line wraps (a clock
    ticking); else a layout pass, as ``Static.update`` always does.

    ``hang``: a line too long for the widget continues ``hang`` cells in from its own indent
    (``Hanging``), not at the left edge; such text is laid out again whenever it changes."""
    shown = widget.content
    if hang is not None:
        if isinstance(shown, Hanging) and (shown.source, shown.extra) == (content, hang):
            return False
        widget.update(Hanging(content, extra=hang))
        return True
    if isinstance(shown, str) and shown == content:
        return False
    if layout is None:
        height, width = widget.styles.height, widget.styles.width
        if height is not None and not height.is_auto and width is not None and not width.is_auto:
            layout = False
        else:
            shape = _shape(widget, content)
            layout = shape is None or not isinstance(shown, str) or shape != _shape(widget, shown)
    widget.update(content, layout=layout)
    return True


def _shape(widget: Static, content: str) -> tuple[int, ...] | None:
    """Each line's width in cells, when none of them wraps in ``widget`` as laid out now."""
    room = widget.size.width
    if room <= 0:
        return None
    plain = Content.from_markup(content).plain if getattr(widget, "_render_markup", True) else content
    widths = tuple(cell_len(line) for line in plain.split("\n"))
    return widths if max(widths) <= room else None
