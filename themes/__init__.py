"""The console's themes: dark, light, and an ANSI-only one for poor terminals.

Colours live here and in console.tcss only; widgets use theme variables ($success…).
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import BUILTIN_THEMES, Theme

CSS_PATH = Path(__file__).with_name("console.tcss")

DARK = Theme(
    name="rollback-dark",
    primary="#4EA1FF",
    secondary="#8AB4F8",
    accent="#FFB454",
    warning="#F2C94C",
    error="#FF5F5F",
    success="#5FD787",
    foreground="#E6E6E6",
    background="#111418",
    surface="#1A1F26",
    panel="#232A33",
    dark=True,
)

LIGHT = Theme(
    name="rollback-light",
    primary="#0B5CAD",
    secondary="#3A6EA5",
    accent="#B25E00",
    warning="#9A6700",
    error="#C62828",
    success="#1B7F3B",
    foreground="#1B1F23",
    background="#F7F7F5",
    surface="#FFFFFF",
    panel="#E9ECEF",
    dark=False,
)

# Built on Textual's ANSI theme: the terminal's own 16 colours, nothing else.
_ansi = BUILTIN_THEMES["ansi-dark"]
ANSI = Theme(
    name="rollback-ansi",
    primary=_ansi.primary,
    secondary=_ansi.secondary,
    accent=_ansi.accent,
    warning=_ansi.warning,
    error=_ansi.error,
    success=_ansi.success,
    foreground=_ansi.foreground,
    background=_ansi.background,
    surface=_ansi.surface,
    panel=_ansi.panel,
    boost=_ansi.boost,
    dark=True,
    ansi=True,
    variables=dict(_ansi.variables),
)

THEMES = {t.name: t for t in (DARK, LIGHT, ANSI)}
DEFAULT = DARK.name
