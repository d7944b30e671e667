"""A command line loads only what its command uses (issue 12, item 3): the parser registers
the named command's module alone, and parses every command line exactly as the full
parser does; the journal package loads its parts on first use; the fast exit still runs
the atexit handlers and flushes the output."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import COMMAND_MODULES, COMMANDS, build_parser, modules_for
from console.profile import DEFAULT_PROFILE
from tests import tui_data


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    assert _commands(build_parser()) == set(COMMAND_MODULES)
    for module in COMMANDS:
        parser = argparse.ArgumentParser()
        importlib.import_module(f"console.cli.{module}").register(parser.add_subparsers())
        mapped = {command for command, owner in COMMAND_MODULES.items() if owner == module}
        assert _commands(parser) == mapped, module


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--config", "A.toml"], ()),
        ([], ()),
        (["--theme", "dark", "--config=A.toml"], ()),
        (["--config", "A.toml", "--theme=light", "rollback", "quick", "--env", "staging"], ("rollback",)),
        (["undo", "r-1"], ("rollback",)),
        (["report", "r-1", "--config", "A.toml"], ("history",)),
        (["config", "validate", "X.toml"], ("config_cmd",)),
        (["watch"], ("tui",)),
        (["fault", "--dir", "D", "staging", "latency_s=6"], ("simulate",)),
        (["--help"], COMMANDS),
        (["-h"], COMMANDS),
        (["--conf", "A.toml", "status"], COMMANDS),  # an abbreviation: the full parser decides
        (["bogus"], COMMANDS),  # the full parser lists every command in its message
        (["--config"], ()),
    ],
)
def test_the_modules_a_command_line_needs(argv: list[str], expected: tuple[str, ...]) -> None:
    assert modules_for(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "A.toml"],
        ["--config", "A.toml", "--theme", "dark", "watch", "--config", "B.toml"],
        ["status", "staging", "--json", "--config", "A.toml"],
        ["rollback", "quick", "--env", "staging", "--yes", "--reason", "latency above 5 s"],
        ["restore", "--env", "production", "--run", "r-1", "--approved-by", "lead"],
        ["history", "--markdown", "--drills"],
        ["report", "r-1", "-o", "out.md"],
        ["checklist", "r-1", "--tick", "1", "--note", "done"],
        ["config", "validate", "X.toml"],
        ["plan", "full", "--env", "staging"],
        ["drill", "latency", "--keep"],
        ["unlock", "--env", "staging", "--reason", "dead console"],
    ],
)
def test_the_narrow_parser_parses_as_the_full_one(argv: list[str]) -> None:
    assert vars(build_parser(argv).parse_args(argv)) == vars(build_parser().parse_args(argv))


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_a_command_loads_only_what_it_uses(tmp_path: Path) -> None:
    config = tui_data.make_config(root=tmp_path / "fixed")
    loaded = _loaded_after(
        f"from console.cli import main\nassert main(['config', 'validate', {str(config.path)!r}]) == 0\n"
    )
    assert "console.cli.config_cmd" in loaded
    for never in ("textual", "httpx", "console.engine.session", "console.runbook.drills", "console.cli.rollback"):
        assert never not in loaded, never
    # A rollback needs httpx, not httpx's own command-line tool (click, rich, pygments), nor
    # any of Textual's parts — even in this venv, where the test tools install click.
    loaded = _loaded_after("import console.cli.rollback")
    assert "httpx" in loaded and "console.engine.session" in loaded
    for never in ("click", "rich", "pygments", "textual"):
        assert never not in loaded, never
    # The journal package loads the parts a command uses, not the history table or report.
    loaded = _loaded_after("from console.journal import Journal")
    assert "console.journal.store" in loaded
    assert "console.journal.report" not in loaded and "console.journal.history" not in loaded


def test_every_name_of_the_journal_package_is_there() -> None:
    import console.journal as journal

    for name in journal.__all__:
        assert getattr(journal, name) is not None
    with pytest.raises(AttributeError):
        journal.no_such_name  # noqa: B018


def test_the_fast_exit_runs_atexit_handlers_and_flushes(tmp_path: Path) -> None:
    marker = tmp_path / "atexit-ran"
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "sys.stdout.write('buffered, not yet flushed')\n"
        "from console.__main__ import leave\n"
        "leave(3)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert out.stdout == "buffered, not yet flushed"
    assert marker.read_text() == "yes"


def test_the_fast_exit_waits_for_a_thread_still_running(tmp_path: Path) -> None:
    """A non-daemon thread still working at exit is waited for, as by the ordinary exit."""
    done = tmp_path / "thread-done"
    code = (
        "import threading, time\n"
        f"threading.Thread(target=lambda: (time.sleep(0.3), open({str(done)!r}, 'w').write('yes'))).start()\n"
        "from console.__main__ import leave\n"
        "leave(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert done.read_text() == "yes"


def test_a_profiler_still_gets_to_write_its_results(tmp_path: Path) -> None:
    """cProfile writes its output after the program returns: with a profiler attached the
    console leaves by the ordinary exit, not the fast one that would skip that."""
    results = tmp_path / "profile.out"
    # a command that returns (``--help`` would leave by argparse's SystemExit instead)
    command = ["-m", "console", "--config", str(tmp_path / "none.toml"), "status"]
    out = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(results), *command], capture_output=True, text=True, timeout=120
    )
    assert "no config at" in out.stderr  # (cProfile swallows the exit code)
    assert results.stat().st_size > 0


def test_a_console_process_collects_garbage_less_often() -> None:
    """`rollback-console` (console/__main__.py) keeps the collector off while it loads the
    command's modules, then moves what it loaded out of the collector's sight, turns it back
    on and collects the youngest generation every 10,000 allocations: a fifth of a fleet
    rollback's CPU went to collections (console/collector.py)."""
    code = (
        "import atexit, gc, sys\n"
        "early, running = [], []  # collections after run() began, before the first freeze: the imports'\n"
        "def seen(phase, info):\n"
        "    if phase == 'start' and running and not gc.get_freeze_count():\n"
        "        early.append(1)\n"
        "gc.callbacks.append(seen)\n"
        "atexit.register(lambda: print('GC', gc.isenabled(), gc.get_threshold()[0], gc.get_freeze_count() > 1000,\n"
        "                              'early', len(early), flush=True))\n"
        f"sys.argv = ['rollback-console', 'config', 'validate', {str(DEFAULT_PROFILE)!r}]\n"
        "from console.__main__ import run\n"
        "running.append(1)\n"
        "run()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "GC True 10000 True early 0" in out.stdout, out.stdout + out.stderr


def test_a_probe_worker_never_starts_with_its_collector_held() -> None:
    """The worker lives as long as the console: forked from a console whose collector is held
    (while its modules load), it turns it back on first thing."""
    code = (
        "import gc, sys\n"
        "from console import collector\n"
        "from console.probes import worker\n"
        "collector.hold()\n"
        "assert not gc.isenabled()\n"
        "worker._child_setup()  # what a forked worker does first (its output goes to /dev/null)\n"
        "sys.exit(0 if gc.isenabled() and gc.get_threshold()[0] == collector.YOUNG_THRESHOLD else 3)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_a_process_that_calls_main_itself_keeps_its_collector() -> None:
    """A test (or a script) calling ``main()`` in its own process: nothing frozen, the
    collector as Python left it."""
    code = (
        "import gc, sys\n"
        "python_s = gc.get_threshold()\n"
        "from console.cli import main\n"
        f"code = main(['config', 'validate', {str(DEFAULT_PROFILE)!r}])\n"
        "print('GC', code, gc.isenabled(), gc.get_threshold() == python_s, gc.get_freeze_count(), flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "GC 0 True True 0" in out.stdout, out.stdout + out.stderr


QUIT_WHEN_POPULATED = """
import sys
from console.config import load_config
from console.probes.worker import ProbeWorker
from screens.app import RollbackConsole
from screens.widgets.env_panel import EnvPanel

config = load_config(sys.argv[1])
worker = ProbeWorker.start(config)
drawn = set()
draw = EnvPanel.refresh_from_live

def refresh_from_live(panel):
    draw(panel)
    if panel.live.snapshot is not None:
        drawn.add(panel.live.env.name)
        if drawn == set(panel.app.live):
            app = panel.app
            app.check_interrupted()  # the journal's first look, due about now
            app._watch_standing()
            app.exit()  # leaving in the same moment: a signal, the start-up bench

EnvPanel.refresh_from_live = refresh_from_live
RollbackConsole(config, probe_worker=worker).run(headless=True)
worker.close()
print("left")
"""


def test_leaving_as_soon_as_the_dashboard_is_populated_leaves_nothing_behind(simulation) -> None:
    """The journal's first look is due right then: a console leaving at that moment printed
    "coroutine ... was never awaited" twice, for the look's workers it never started."""
    out = subprocess.run(
        [sys.executable, "-c", QUIT_WHEN_POPULATED, str(simulation.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "left", out
    assert "never awaited" not in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_stop_signal_while_a_class_is_defined_counts_as_a_stop() -> None:
    """A SIGHUP landing while an import defines a dataclass reached main() as Python's
    RuntimeError("Error calling __set_name__ …") and printed a traceback (test_signals caught
    it once). It is recognised as the stop it is."""
    import dataclasses

    from console.cli import interrupted

    class Stops:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt  # what the stop signal's handler raises, right here

    with pytest.raises(RuntimeError) as raised:

        @dataclasses.dataclass
        class Defined:
            field: Stops = Stops()  # noqa: RUF009 - the point: its __set_name__ runs here

    assert interrupted(raised.value)
    assert not interrupted(RuntimeError("something else"))
    try:
        raise ValueError("in cleanup") from RuntimeError("wrapped")
    except ValueError as exc:
        assert not interrupted(exc)


def test_the_simulated_restart_command_loads_no_reader_and_no_event_loop() -> None:
    """Every simulated restart runs `python -m console.simulator.ctl`: importing the profile's
    model ran console.profile's and console.config's ``__init__``, which loaded both readers
    and asyncio with them, in each of the thousands of restarts the tests and benches make.
    It reads the env file only for its values: not the flag model either (28 frozen
    dataclasses, a third of its import time)."""
    heavy = (
        "console.profile.load",
        "console.config.load",
        "asyncio",
        "urllib.request",
        "console.profile.model",
        "console.flags",
    )
    code = f"import sys, console.simulator.ctl; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout
