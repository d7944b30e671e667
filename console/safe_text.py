"""Text from a host (log lines, command output, error bodies) made safe to show."""

from __future__ import annotations

import re

# No escape sequences from a remote host may drive the operator's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")


def clean(text: str) -> str:
    """Control characters (ESC among them) shown as \\xNN; newlines and tabs kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
