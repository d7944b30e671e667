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
