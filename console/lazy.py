"""A package's names loaded with the first use of their module (PEP 562).

    __getattr__, __dir__ = lazy.exports(__name__, {"Journal": "store", ...})

Importing one submodule runs its package's ``__init__``: with eager re-exports there, the
simulator's restart command (which needs the profile's model) loaded the profile reader,
the config reader and asyncio, in every simulated restart.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: name → its submodule (relative)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # once: later lookups never come here
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
