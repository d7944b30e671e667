"""Where the console draws: the terminal, even when stderr is redirected.

Textual draws on stderr. ``rollback-console demo 2>errors.log`` would then send the
whole screen into the file; here the screen goes to whichever of stderr and stdout is
the terminal, so stderr keeps only errors.
"""

from __future__ import annotations

import sys
from typing import Any

from textual.drivers.linux_driver import LinuxDriver


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class TerminalDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not _is_terminal(sys.__stderr__) and _is_terminal(sys.__stdout__):
            self._file = sys.__stdout__
