"""Text whose wrapped lines hang under their own line's indent.

A preview's diff line, a validation's detail or a log line that is wider than the terminal
wraps; Textual starts the rest of it at the left edge, where it reads as a line of its own
(a diff line without its "+", a check without its PASS). ``Hanging`` starts it under the
line's own indent plus ``extra`` cells, at whatever width the text is drawn, so it re-wraps
when the terminal is resized. The text's characters are unchanged (selection and copying
see the original lines); only the drawn cells gain the indent. It builds on Content's own
wrapping (``_wrap_and_format`` and ``_FormattedLine``, Textual's internals: Textual is pinned
exactly, and tests/test_tui_format.py draws it at two widths).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text
from textual.content import Content, _FormattedLine
from textual.css.types import TextAlign, TextOverflow
from textual.selection import Selection
from textual.style import Style
from textual.visual import RulesMap

__all__ = ["Hanging", "HangingText", "hanging_breaks"]


def hanging_breaks(plain: str, width: int, extra: int) -> tuple[list[int], int]:
    """Where a line of ``width`` cells breaks, and the indent of its continuations: at spaces
    where it can, inside a word only when the word alone is wider than the room."""
    lead = len(plain) - len(plain.lstrip(" "))
    indent = min(lead + extra, width // 2)
    offsets: list[int] = []
    used, word_start, word_used = 0, None, 0
    for i, ch in enumerate(plain):
        w = cell_len(ch)
        if ch == " ":
            word_start = None
            used += w
            continue
        if word_start is None:
            word_start, word_used = i, used
        if used + w > width:
            # The word started on this line after something else: break before it.
            line_start = offsets[-1] if offsets else 0
            if word_start > line_start and word_used > (indent if offsets else lead):
                offsets.append(word_start)
                used = indent + sum(cell_len(c) for c in plain[word_start:i])
            else:  # a word wider than the room: fold it here
                offsets.append(i)
                used, word_start = indent, i
        used += w
    return offsets, indent


class _Hung(_FormattedLine):
    """A continuation: the indent's blank cells, then the text (its offsets kept for selection)."""

    def __init__(self, *args: object, indent: int, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.indent = indent

    def to_strip(self, style: Style) -> tuple[list[Segment], int]:
        segments, width = super().to_strip(style)
        return [Segment(" " * self.indent, style.background_style.rich_style), *segments], width + self.indent


class Hanging(Content):
    """Content (markup and all) whose wrapped lines hang; see the module's docstring."""

    def __init__(self, content: Content | str, extra: int = 2) -> None:
        self.source = content  # what it was made from: a caller can tell it shows that already
        content = Content.from_markup(content) if isinstance(content, str) else content
        super().__init__(content.plain, list(content.spans), strip_control_codes=False)
        self.extra = extra

    def get_height(self, rules: RulesMap, width: int) -> int:
        if rules.get("line_pad", 0) or rules.get("text_wrap", "wrap") == "nowrap":
            return super().get_height(rules, width)
        return len(self._wrap_and_format(width, overflow=rules.get("text_overflow", "fold")))

    def _wrap_and_format(
        self,
        width: int,
        align: TextAlign = "left",
        overflow: TextOverflow = "fold",
        no_wrap: bool = False,
        line_pad: int = 0,
        tab_size: int = 8,
        selection: Selection | None = None,
        selection_style: Style | None = None,
        post_style: Style | None = None,
        get_style: Callable[[str | Style], Style] = Style.parse,
    ) -> list[_FormattedLine]:
        if no_wrap or line_pad or width < 8:
            return super()._wrap_and_format(
                width,
                align,
                overflow,
                no_wrap,
                line_pad,
                tab_size,
                selection,
                selection_style,
                post_style,
                get_style,
            )
        out: list[_FormattedLine] = []
        for y, line in enumerate(self.split(allow_blank=True)):
            if post_style is not None:
                line = line.stylize(post_style)
            if selection is not None and selection_style is not None and (span := selection.get_span(y)) is not None:
                start, end = span
                line = line.stylize(selection_style, start, len(line.plain) if end == -1 else end)
            line = line.expand_tabs(tab_size)
            offsets, indent = hanging_breaks(line.plain, width, self.extra)
            parts = line.divide(offsets)
            for i, (part, at) in enumerate(zip(parts, [0, *offsets], strict=True)):
                if i + 1 < len(parts):
                    part = part.rstrip()
                if i:
                    skip = len(part.plain) - len(part.plain.lstrip(" "))
                    part, at = part[skip:], at + skip
                    out.append(_Hung(get_style, part.rstrip_end(width - indent), width - indent, at, y, indent=indent))
                else:
                    out.append(_FormattedLine(get_style, part.rstrip_end(width), width, at, y, align=align))
            out[-1].line_end = True
        return out


class HangingText:
    """The same for a Rich renderable (a RichLog's lines, drawn once at the log's width)."""

    def __init__(self, text: Text | str, extra: int = 2) -> None:
        self.text = Text(text) if isinstance(text, str) else text
        self.text.expand_tabs()  # as RichLog does for its own Text
        self.extra = extra

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = max((cell_len(line) for line in self.text.plain.split("\n")), default=0)
        return Measurement(min(widest, 8), widest)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for line in self.text.split("\n", allow_blank=True):
            if width < 8:
                yield line
                continue
            offsets, indent = hanging_breaks(line.plain, width, self.extra)
            parts = list(line.divide(offsets))
            for i, part in enumerate(parts):
                if i + 1 < len(parts):
                    part.rstrip()
                if i:
                    part = Text(" " * indent).append_text(part[len(part.plain) - len(part.plain.lstrip(" ")) :])
                yield part
