"""The command line: ``rollback-console COMMAND``. Each command lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Module names under console.cli, each with register(subparsers) setting func=handler.
COMMANDS = (
    "tui",
    "simulate",
    "config_cmd",
    "status",
    "check",
    "plan_cmd",
    "rollback",
    "history",
    "checklist_cmd",
    "drill",
)

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollback-console",
        description="Watch the analyticbot API and roll back its Phase 4 features safely.",
    )
    _add_global_options(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"console.cli.{name}").register(sub)
    # Global options also after the subcommand (`status --config FILE`), as kubectl and
    # docker users expect. SUPPRESS: not given there, the value from before it stands.
    for child in _subparsers(parser):
        _add_global_options(child, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "func", None)
    if handler is None:
        from console.cli.tui import open_console

        handler = open_console
    try:
        code = handler(args)
    except UsageError as exc:
        print(f"rollback-console: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except BrokenPipeError:  # e.g. `status --json | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    except KeyboardInterrupt:
        print("rollback-console: interrupted", file=sys.stderr)
        code = 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
