"""The engine works without a screen: importing every console module must not load textual."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import console


def test_console_package_never_imports_textual() -> None:
    modules = [m.name for m in pkgutil.walk_packages(console.__path__, "console.") if not m.name.endswith("__main__")]
    assert len(modules) > 5
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"console/ loaded textual modules: {out.stdout.strip()}"
