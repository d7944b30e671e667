"""Updating text on screen without needless work: unchanged text is not re-rendered, and
a widget whose size cannot follow its text (fixed height and width, by CSS) is repainted
without a layout pass of the whole screen."""

from __future__ import annotations

from textual.widgets import Static


def show(widget: Static, content: str, *, layout: bool | None = None) -> bool:
    """Show ``content`` (markup) in ``widget``; False when it was shown already.

    ``layout``: None decides from the widget's styles — a layout pass only when its height
    or width is ``auto`` (the text can change its size)."""
    if getattr(widget, "_shown_markup", None) == content:
        return False
    widget._shown_markup = content  # type: ignore[attr-defined]
    if layout is None:
        height, width = widget.styles.height, widget.styles.width
        layout = height is None or height.is_auto or width is None or width.is_auto
    widget.update(content, layout=layout)
    return True
