"""The house keeps its layers: import-linter's contracts in pyproject.toml, run over the real
tree, and shown to bite on a copy of it with a forbidden import planted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` as a fresh process over the tree at ``cwd`` (its pyproject, its code)."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_contract_is_kept() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "7 kept" in done.stdout, done.stdout


def test_a_forbidden_import_breaks_its_contract(tmp_path: Path) -> None:
    for part in ("console", "screens"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    flags = tmp_path / "console" / "flags.py"
    flags.write_text(flags.read_text(encoding="utf-8") + "\nfrom screens import format as _f  # planted\n")
    transport = tmp_path / "console" / "transport" / "base.py"
    transport.write_text(transport.read_text(encoding="utf-8") + "\nimport console.engine.runner  # planted\n")
    session = tmp_path / "console" / "engine" / "session.py"  # the engine choosing a plan itself
    session.write_text(session.read_text(encoding="utf-8") + "\nfrom console.plans import build_plan  # planted\n")

    done = lint_imports(tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 broken" not in done.stdout and " broken" in done.stdout, done.stdout
    assert "console.flags -> screens.format" in done.stdout
    assert "console.transport.base -> console.engine.runner" in done.stdout
    assert "console.engine.session -> console.plans" in done.stdout
