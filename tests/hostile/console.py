"""Bad-input kinds: the console itself (Pilot, 80×24)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.hostile.support import journal_with, kind, log_variant, set_key, toml_path, with_password_file

# --- the console (Pilot, 80×24) -------------------------------------------------------------


def _console(ctx, config: Path, keys: tuple[str, ...], *, wait_for: str | None = None) -> str:
    """Open the real console on ``config``, press ``keys``, return the text of every screen
    seen, and quit with q: the console must stay alive and leave within the deadline."""
    from console.config import load_config
    from screens.app import RollbackConsole
    from tests.canary_support import screen_text

    async def go() -> str:
        app = RollbackConsole(load_config(config))
        seen = []
        async with asyncio.timeout(60):
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause(0.5)
                for key in keys:
                    await pilot.press(key)
                    await pilot.pause(0.3)
                    seen.append(screen_text(app))
                if wait_for:
                    for _ in range(100):
                        if wait_for in screen_text(app):
                            break
                        await pilot.pause(0.1)
                seen.append(screen_text(app))
                await pilot.press("q")
                await pilot.pause(0.2)
        return "\n".join(seen)

    return asyncio.run(go())


def _assert_screen(text: str, *says: str) -> None:
    for phrase in says:
        assert phrase in text, f"{phrase!r} not on screen:\n{text[-3000:]}"
    raw = re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", text)
    assert raw is None, f"a raw {raw.group()!r} on screen"


@kind("console", "named pipe as the password file")
def console_password_fifo(ctx) -> None:
    """The console with a FIFO password file: it opens, says why the login fails, and q quits
    (it once ignored q and Ctrl-C for minutes, both processes blocked in open())."""
    fifo = ctx.fifo("password")
    config = with_password_file(ctx, fifo)
    text = _console(ctx, config, ("enter",), wait_for="cannot read secret file")
    _assert_screen(text, "cannot read secret file")  # the reason is cut to the column's width


@kind("console", "named pipe as the log")
def console_log_fifo(ctx) -> None:
    """The console with a FIFO log: the panel says so; the env file and process readings
    still come (they once went to "?" as the worker's threads blocked one by one)."""
    fifo = ctx.fifo("staging.log")
    config = log_variant(ctx, fifo)
    text = _console(ctx, config, ("enter",), wait_for="named pipe")
    _assert_screen(text, "named pipe")


@kind("console", "nested JSON in the journal")
def console_nested_journal(ctx) -> None:
    """`h` with a deeply nested journal line: the history opens (it died with RecursionError)."""
    sim, run_id, _ = journal_with(ctx, b"[" * 100_000 + b"]" * 100_000)
    text = _console(ctx, sim.config_path, ("h",), wait_for=run_id[:12])
    _assert_screen(text, "1 run in", "1 journal problem", run_id[:12])


@kind("console", "escapes and markup in a reason")
def console_reason_markup(ctx) -> None:
    """A reason with escapes and markup (`[b]`, `[database]`): the history shows it as typed."""
    sim = ctx.fresh()
    reason = "[b]bold[/b] [database] \x1b[2J\u202eevil"
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", reason)
    assert answer.code == 0, answer
    text = _console(ctx, sim.config_path, ("h",), wait_for="[database]")
    # At 80 columns the history wraps a long reason: each piece shows as typed.
    _assert_screen(text, "[b]bold[/b]", "[database]", "\\x1b[2J\\u202eevil")


@kind("console", "FIFO env file and the Database tab")
def console_env_fifo(ctx) -> None:
    """A FIFO env file: the focused view says so; the Database tab of an environment
    without a database reads "no [database] section" (the tag was eaten as markup)."""
    fifo = ctx.fifo(".env.staging")
    text = ctx.sim.config_path.read_text()
    text = set_key(text, "staging", "env_file", toml_path(fifo))
    text = re.sub(r"(?ms)^\[environments\.staging\.database\].*?(?=^\[|\Z)", "", text)
    config = ctx.config(text)
    shown = _console(ctx, config, ("enter",), wait_for="named pipe")
    _assert_screen(shown, "named pipe", "no [database] section for this environment")
