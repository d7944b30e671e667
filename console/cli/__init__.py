"""The command line: ``rollback-console COMMAND``. Each command lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from console import collector

# Module names under console.cli, each with register(subparsers) setting func=handler.
COMMANDS = (
    "tui",
    "simulate",
    "config_cmd",
    "status",
    "check",
    "plan_cmd",
    "rollback",
    "approvals",
    "history",
    "checklist_cmd",
    "drill",
)
# Which module registers each command: a command line loads only its own command's module
# (and what that imports), not every command's. tests/test_cli_habits.py keeps this whole.
COMMAND_MODULES = {
    "demo": "tui",
    "watch": "tui",
    "simulate": "simulate",
    "fault": "simulate",
    "config": "config_cmd",
    "status": "status",
    "check": "check",
    "plan": "plan_cmd",
    "rollback": "rollback",
    "restore": "rollback",
    "resume": "rollback",
    "undo": "rollback",
    "start": "rollback",
    "unlock": "rollback",
    "approve": "approvals",
    "reject": "approvals",
    "withdraw": "approvals",
    "requests": "approvals",
    "history": "history",
    "report": "history",
    "checklist": "checklist_cmd",
    "drill": "drill",
}

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or bad config: exit 2 with the message on stderr."""


GLOBAL_OPTIONS = (
    (
        ("--config",),
        {
            "metavar": "FILE",
            "help": "config file (default: $ROLLBACK_CONSOLE_CONFIG, then ~/.config/rollback-console/config.toml)",
        },
    ),
    (
        ("--theme",),
        {
            "choices": ("dark", "light", "ansi"),
            "help": "console theme (default: dark; ANSI-only on 8/16-colour terminals; also $ROLLBACK_CONSOLE_THEME)",
        },
    ),
)


def _add_global_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    for flags, kw in GLOBAL_OPTIONS:
        parser.add_argument(*flags, default=default, **kw)  # type: ignore[arg-type]


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones too (``config validate``)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                found.append(child)
                found.extend(_subparsers(child))
    return found


def modules_for(argv: Sequence[str] | None) -> tuple[str, ...]:
    """The command modules a command line needs: the one of the command it names; none when
    it names none (the console opens); every one for help, an unknown command or option (the
    full parser says what is wrong, and lists every command)."""
    if argv is None:
        return COMMANDS
    args = list(argv)
    i = 0
    while i < len(args):
        token = args[i]
        if token in ("--config", "--theme"):
            i += 2
            continue
        if token.startswith(("--config=", "--theme=")):
            i += 1
            continue
        if token.startswith("-"):  # help, an abbreviation, a typo: the full parser answers
            return COMMANDS
        module = COMMAND_MODULES.get(token)
        return (module,) if module else COMMANDS
    return ()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv`` (every command when None; see ``modules_for``)."""
    parser = argparse.ArgumentParser(
        prog="rollback-console",
        description="Watch a service live and roll back its release safely, as its runbook says.",
    )
    _add_global_options(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules_for(argv):
        importlib.import_module(f"console.cli.{name}").register(sub)
    # Global options also after the subcommand (`status --config FILE`), as kubectl and
    # docker users expect. SUPPRESS: not given there, the value from before it stands.
    for child in _subparsers(parser):
        _add_global_options(child, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from console import shutdown

    shutdown.install()  # first: a SIGTERM from now on cleans up instead of killing mid-start
    guard: ModuleType | None = None
    try:
        from console.cli import guard

        guard.install_hooks()
        guard.guard_output()
        return _main(argv, guard)
    # Before the command started, or while its output was flushed; or a RuntimeError from an
    # import that the stop signal interrupted (see ``interrupted``).
    except (KeyboardInterrupt, RuntimeError) as exc:
        if not interrupted(exc):
            raise
        print(f"rollback-console: {_stopped_word()}", file=sys.stderr)
        return shutdown.exit_code()
    finally:
        if guard is not None:
            guard.release_output()
        # CPython marks "Ctrl-C was never handled" when a KeyboardInterrupt passes through
        # exec() of a string (dataclasses build methods so) even if it is caught later, and
        # then kills itself with SIGINT at exit. Each exec of a string clears the mark.
        exec("")


def interrupted(exc: BaseException) -> bool:
    """Whether a stop signal's KeyboardInterrupt is behind ``exc``: one raised while a class
    is being defined (a dataclass, in an import) reaches us as a RuntimeError from Python's
    __set_name__ call."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _stopped_word() -> str:
    from console import shutdown

    return "interrupted" if shutdown.received() in (None, signal.SIGINT) else f"stopped by {shutdown.describe()}"


def _main(argv: Sequence[str] | None, guard: ModuleType) -> int:
    from console import shutdown

    try:
        parser = build_parser(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        collector.settle_held()  # the command's modules are loaded (console/collector.py)
        handler = getattr(args, "func", None)
        if handler is None:
            from console.cli.tui import open_console

            handler = open_console
        code = handler(args)
        if shutdown.received() is not None:  # a signal the command handled by stopping early
            print(f"rollback-console: stopped by {shutdown.describe()}", file=sys.stderr)
            code = shutdown.exit_code()
    except UsageError as exc:
        print(f"rollback-console: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except BrokenPipeError:  # e.g. `status --json | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    except KeyboardInterrupt:
        print(f"rollback-console: {_stopped_word()}", file=sys.stderr)
        code = shutdown.exit_code()
    except SystemExit:
        raise
    except Exception as exc:  # the guard: never a traceback on the operator's terminal
        if interrupted(exc):  # a stop signal during a lazy import: stopped, not crashed
            print(f"rollback-console: {_stopped_word()}", file=sys.stderr)
            code = shutdown.exit_code()
        else:
            code = guard.crash(exc, list(argv) if argv is not None else None)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
