"""Shared fixtures. Real parts only: simulator processes, PostgreSQL, sshd."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("ROLLBACK_CONSOLE_CI") == "1"

# Fixtures for the real parts live in their own modules.
pytest_plugins = ["tests.fixtures_pg", "tests.fixtures_ssh"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI nothing may skip, and a run that collected no test is a failure."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if IN_CI and skipped:
        if reporter:
            reporter.write_line(f"CI: {skipped} test(s) skipped; in CI every component must be present", red=True)
        session.exitstatus = 1
    if session.testscollected == 0 and exitstatus in (0, 5):
        session.exitstatus = 5


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The bad-input suite's size, per family, whenever it was collected."""
    import sys

    support = sys.modules.get("tests.hostile.support")
    if support is None or not support.KINDS:
        return
    per_family = support.counts()
    detail = ", ".join(f"{family} {n}" for family, n in per_family.items())
    terminalreporter.write_line(f"bad-input kinds: {sum(per_family.values())} ({detail})")
