"""``history`` (the runbook's Rollback History table) and ``report RUN_ID`` (incident report)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from console.cli import EXIT_FAILED, EXIT_OK, UsageError
from console.cli.common import config_from_args, print_json
from console.config import find_config
from console.config.model import DEFAULT_JOURNAL
from console.journal import Journal, JournalError, history_json, history_markdown, history_text, incident_report
from console.runbook.checklist import checklist_of
from console.runbook.drills import scorecards, scorecards_text

LATEST = 20  # runs `history` shows unless told otherwise: what an operator looks at


def register(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser(
        "history",
        help="the runbook's Rollback History table, from the journal",
        description=(
            f"The runbook's Rollback History table, oldest first. The table and --markdown show the latest "
            f"{LATEST} runs and say how many older ones there are; --json gives every run (for scripts). "
            "--limit N shows the latest N instead, --all every run."
        ),
    )
    h.add_argument("--env", metavar="ENV")
    form = h.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="pasteable into the runbook")
    form.add_argument("--json", action="store_true", help="every run, unless --limit")
    many = h.add_mutually_exclusive_group()
    many.add_argument("--limit", type=int, metavar="N", help=f"the latest N runs (default: {LATEST}; --json: all)")
    many.add_argument("--all", action="store_true", help="every run, however many years of them")
    h.add_argument("--drills", action="store_true", help="drill scorecards instead of real rollbacks")
    h.add_argument(
        "--verify",
        action="store_true",
        help="check the journal's hash chain (what was appended since the last check); exit 1 if broken",
    )
    h.add_argument("--full", action="store_true", help="with --verify: read the whole journal again")
    h.set_defaults(func=run_history)
    r = sub.add_parser("report", help="incident report of one run (markdown)")
    r.add_argument("run_id", metavar="RUN_ID")
    r.add_argument("--output", "-o", metavar="FILE", help="write it to FILE (and tick the checklist item)")
    r.set_defaults(func=run_report)


def _journal(args: argparse.Namespace) -> Journal:
    """The configured journal; with no config at all, the default one (where drills go)."""
    if getattr(args, "config", None) is None and not find_config(None).exists():
        return Journal(Path(os.path.expanduser(DEFAULT_JOURNAL)))
    return Journal(config_from_args(args).journal_path)


def run_history(args: argparse.Namespace) -> int:
    journal = _journal(args)
    try:
        if args.full and not args.verify:
            raise UsageError("--full goes with --verify")
        if args.verify:
            return _verify(journal, full=args.full)
        if args.limit is not None and args.limit < 1:
            raise UsageError("--limit takes a number of runs, 1 or more")
        limit = None if args.all or (args.json and args.limit is None) else (args.limit or LATEST)
        page = journal.page(args.env, drills=args.drills, limit=limit)
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    runs = page.rows
    _say_bad_lines(journal)
    cards = scorecards(journal) if args.drills else []
    older = _older(page.older, args)
    if args.json:
        print_json({"runs": history_json(runs), "scorecards": cards} if args.drills else history_json(runs))
        if older:
            print(f"note: {older}", file=sys.stderr)
    elif args.markdown:
        print(history_markdown(runs))
        if older:
            print(f"note: {older}", file=sys.stderr)  # the table stays pasteable as it is
    else:
        print(history_text(runs) + (f"\n{older}" if older else ""))
        if args.drills:
            print("\nDrill scorecards\n" + scorecards_text(cards))
    return EXIT_OK


def _older(n: int, args: argparse.Namespace) -> str:
    """How many runs the page left out, and how to see them ("" when none)."""
    if n <= 0:
        return ""
    kind = ("drill " if args.drills else "") + "run" + ("s" if n != 1 else "")
    where = f" of {args.env}" if args.env else ""
    return (
        f"{n:,} older {kind}{where} not shown: `rollback-console history --all` shows every one, "
        "`--limit N` the latest N."
    )


def _verify(journal: Journal, *, full: bool) -> int:
    problems = journal.verify_checkpointed(full=full)
    if full:  # everything was read anyway: the run index is made afresh from it too
        journal.rebuild_index()
    if problems.note:
        print(f"note: {problems.note}", file=sys.stderr)
    for p in problems:
        print(p)
    scope = problems.scope()
    print(
        f"{journal.path}: "
        + ("hash chain intact" if not problems else f"{len(problems)} problem(s)")
        + (f" ({scope}; --full reads everything)" if scope else "")
    )
    return EXIT_OK if not problems else EXIT_FAILED


def _say_bad_lines(journal: Journal) -> None:
    """Lines that are not records are left out of every table: say so, and where."""
    bad = journal.bad_lines
    if bad:
        where = ", ".join(str(n) for n in bad[:10]) + (", …" if len(bad) > 10 else "")
        print(
            f"note: {len(bad)} line(s) of the journal {journal.path} are not records and were left out "
            f"(line {where}); `rollback-console history --verify` says what is wrong with them",
            file=sys.stderr,
        )


def run_report(args: argparse.Namespace) -> int:
    from console.engine.reports import ReportError, write_report

    config = config_from_args(args)
    journal = Journal(config.journal_path)
    try:
        if args.output:
            write_report(config, journal, args.run_id, args.output)
            print(f"incident report written to {args.output}")
            return EXIT_OK
        run = journal.run(args.run_id)
        print(
            incident_report(
                run,
                checklist=checklist_of(config, run.env),
                journal_path=journal.path,
                problems=journal.verify_checkpointed(),
            )
        )
    except (JournalError, ReportError) as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK
