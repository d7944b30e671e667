"""Shared fixtures. Real parts only: simulator processes, PostgreSQL, sshd."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("ROLLBACK_CONSOLE_CI") == "1"

# Fixtures for the real parts live in their own modules.
pytest_plugins = ["tests.fixtures_pg", "tests.fixtures_ssh"]


# Under xdist the tests are collected in the workers: each sends its count of bad-input
# kinds back (``workeroutput``), and the controller prints it.
_worker_kinds: dict[str, int] = {}


def _kind_counts() -> dict[str, int]:
    import sys

    support = sys.modules.get("tests.hostile.support")
    return support.counts() if support is not None and support.KINDS else {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI nothing may skip, and a run that collected no test is a failure."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker
        workeroutput["bad_input_kinds"] = _kind_counts()
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if IN_CI and skipped:
        if reporter:
            reporter.write_line(f"CI: {skipped} test(s) skipped; in CI every component must be present", red=True)
        session.exitstatus = 1
    if session.testscollected == 0 and exitstatus in (0, 5):
        session.exitstatus = 5


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    for family, n in getattr(node, "workeroutput", {}).get("bad_input_kinds", {}).items():
        _worker_kinds[family] = max(n, _worker_kinds.get(family, 0))  # every worker collects them all


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The bad-input suite's size, per family, whenever it was collected."""
    per_family = _kind_counts() or _worker_kinds
    if not per_family:
        return
    detail = ", ".join(f"{family} {n}" for family, n in per_family.items())
    terminalreporter.write_line(f"bad-input kinds: {sum(per_family.values())} ({detail})")
