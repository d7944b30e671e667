"""The last line of defence: an unexpected exception becomes one line and a crash log; every
byte a command prints passes the sanitizer and the redactor; JSON output stays valid."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from console import safe_text
from console.cli.guard import CRASH_MARKER, OutputGuard
from console.journal.redact import remember_secrets


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"XDG_STATE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())},
        cwd=Path(__file__).parent.parent,
    )


def test_an_unexpected_error_is_one_line_and_a_private_crash_log(tmp_path: Path) -> None:
    code = (
        "import sys, console.cli.history as h\n"
        "def boom(args): raise RuntimeError('db at postgresql://u:hunter2-crash@db/x went \\x1b[2Jaway')\n"
        "h.run_history = boom\n"
        "from console.cli import main\n"
        "sys.exit(main(['history']))\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 1, done
    (line,) = done.stderr.strip().splitlines()
    assert CRASH_MARKER in line and "RuntimeError" in line and "Traceback" not in done.stderr
    assert "hunter2-crash" not in line and "\x1b" not in line
    (log,) = (tmp_path / "rollback-console" / "crashes").iterdir()
    assert str(log) in line and oct(log.stat().st_mode & 0o777) == "0o600"
    details = log.read_text()
    assert "Traceback (most recent call last)" in details and "boom" in details
    assert "hunter2-crash" not in details


def test_an_exception_in_a_thread_is_logged_not_printed(tmp_path: Path) -> None:
    code = (
        "import sys, threading, console.cli.history as h\n"
        "def boom(args):\n"
        "    t = threading.Thread(target=lambda: 1 / 0); t.start(); t.join(); return 0\n"
        "h.run_history = boom\n"
        "from console.cli import main\n"
        "sys.exit(main(['history']))\n"
    )
    done = _python(code, tmp_path)
    assert "Traceback" not in done.stderr and CRASH_MARKER in done.stderr and "ZeroDivisionError" in done.stderr


def test_a_stop_a_finalizer_swallowed_is_delivered_again_not_reported_as_a_crash(tmp_path: Path) -> None:
    """A SIGTERM whose handler ran inside a ``__del__`` raised its KeyboardInterrupt into
    nothing (Python only reports it): it was logged as a crash and the command ran on."""
    code = (
        "import os, signal, sys, time, console.cli.history as h\n"
        "class Finalizer:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.5)\n"
        "def work(args):\n"
        "    Finalizer()\n"
        "    print('swallowed', flush=True)\n"
        "    for _ in range(100): time.sleep(0.1)  # ten seconds of work the stop cuts short\n"
        "    print('ran to the end', flush=True); return 0\n"
        "h.run_history = work\n"
        "from console.cli import main\n"
        "sys.exit(main(['history']))\n"
    )
    done = _python(code, tmp_path)
    assert "swallowed" in done.stdout, done
    assert "ran to the end" not in done.stdout, done
    assert done.returncode == 128 + 15 and "stopped by SIGTERM" in done.stderr, done
    assert CRASH_MARKER not in done.stderr and "Traceback" not in done.stderr, done
    assert not (tmp_path / "rollback-console" / "crashes").exists()


def test_the_output_guard_cleans_and_redacts_whole_lines() -> None:
    raw = io.StringIO()
    guard = OutputGuard(raw)  # type: ignore[arg-type]
    remember_secrets("s3cret-guard-value")
    for piece in ('{"a": "s3cr', 'et-guard-value", ', '"b": "\x1b[2J\u202e"}', "\n", "prompt: "):
        guard.write(piece)
    assert "s3cret" not in raw.getvalue(), "a secret split across writes is still caught"
    guard.flush()
    out = raw.getvalue()
    assert out == '{"a": "[REDACTED]", "b": "\\x1b[2J\\u202e"}\nprompt: '
    assert not guard.isatty()


def test_json_output_is_valid_json_without_raw_controls_or_nan() -> None:
    doc = {"version": float("nan"), "inf": float("inf"), "text": "a\x1b[2J\u202eb\x9b", "bad": "x\udcffy\ud800"}
    text = safe_text.json_text(json.dumps(safe_text.finite(doc), ensure_ascii=False, allow_nan=False))
    assert json.loads(text) == {"version": None, "inf": None, "text": "a\x1b[2J\u202eb\x9b", "bad": "x\ufffdy\ufffd"}
    assert "\x1b" not in text and "\u202e" not in text and "\x9b" not in text


def test_a_task_exception_nobody_retrieved_is_one_line(tmp_path: Path) -> None:
    """asyncio's "Task exception was never retrieved" once printed two tracebacks on stderr."""
    code = (
        "import sys, asyncio, gc, console.cli.history as h\n"
        "async def fails(): raise OSError('End of file')\n"
        "async def go():\n"
        "    asyncio.ensure_future(fails()); await asyncio.sleep(0.05); gc.collect()\n"
        "def boom(args): asyncio.run(go()); gc.collect(); return 0\n"
        "h.run_history = boom\n"
        "from console.cli import main\n"
        "sys.exit(main(['history']))\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 0, done
    assert "Traceback" not in done.stderr
    assert "rollback-console: error: Task exception was never retrieved … (details in" in done.stderr, done.stderr
