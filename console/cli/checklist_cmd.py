"""``rollback-console checklist RUN_ID [--tick ITEM [--note TEXT]] [--untick ITEM]``."""

from __future__ import annotations

import argparse

from console.cli import EXIT_FAILED, EXIT_OK, UsageError
from console.cli.common import config_from_args
from console.journal import Journal, JournalError
from console.runbook import checklist


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("checklist", help="the post-rollback checklist of a run; tick the items a person checks")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--tick", metavar="ITEM", help="tick an item (journaled with your name)")
    p.add_argument("--untick", metavar="ITEM", help="untick an item")
    p.add_argument("--note", default="", metavar="TEXT", help="evidence for the tick, e.g. a dashboard link")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    journal = Journal(config.journal_path)
    try:
        summary = journal.run(args.run_id)
        if args.tick or args.untick:
            checklist.tick(config, journal, summary.run_id, args.tick or args.untick, bool(args.tick), args.note)
        items = checklist.tick_automatic(config, journal, summary.run_id)
    except (JournalError, KeyError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    print(f"Post-rollback checklist — run {summary.run_id} ({summary.title} on {summary.env})")
    for s in items:
        who = "" if not s.by else (" (auto)" if s.by == "auto" else f" (by {s.by})")
        print(f"  [{'x' if s.ticked else ' '}] {s.item.id:<16} {s.item.text}{who}")
        if s.evidence:
            print(f"      {s.evidence}")
    remaining = [s.item.id for s in items if not s.ticked]
    print("  complete" if not remaining else f"  {len(remaining)} to go: {', '.join(remaining)}")
    return EXIT_OK if not remaining else EXIT_FAILED
