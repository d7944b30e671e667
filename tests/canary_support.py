"""Reading what the console shows: the text of every widget on the current screen, and the
screenshot's own text (what an 80×24 terminal really gets)."""

from __future__ import annotations

import html
import re
from typing import Any

from textual.widgets import DataTable, Input, RichLog, Static

_SVG_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)


def _plain(value: Any) -> str:
    for attr in ("plain", "text"):
        if hasattr(value, attr) and isinstance(getattr(value, attr), str):
            return getattr(value, attr)
    return str(value)


def widget_text(app: Any) -> str:
    """The text content of every widget on the screen (and on modal screens below it)."""
    out: list[str] = []
    for screen in app.screen_stack:
        for widget in screen.walk_children(with_self=False):
            try:
                if isinstance(widget, Static):
                    out.append(_plain(widget.visual) if widget.visual is not None else "")
                    out.append(_plain(widget.render()))
                elif isinstance(widget, DataTable):
                    for row in range(widget.row_count):
                        out.append(" ".join(_plain(c) for c in widget.get_row_at(row)))
                    out.append(" ".join(_plain(c.label) for c in widget.columns.values()))
                elif isinstance(widget, RichLog):
                    out.extend(strip.text for strip in widget.lines)
                elif isinstance(widget, Input):
                    out.append(widget.value)
            except Exception as exc:  # a widget mid-update: say so rather than hide it
                out.append(f"<unreadable {type(widget).__name__}: {exc}>")
    return "\n".join(out)


def screenshot_text(app: Any) -> str:
    svg = app.export_screenshot()
    return "".join(html.unescape(t) for t in _SVG_TEXT.findall(svg)).replace("\xa0", " ")


def screen_text(app: Any) -> str:
    return widget_text(app) + "\n" + screenshot_text(app)
