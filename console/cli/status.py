"""``rollback-console status [ENV] [--json]``: one snapshot of each environment."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from console.cli import EXIT_FAILED, EXIT_OK
from console.cli.common import config_from_args, environment_names, print_json
from console.cli.render import log_redactor, snapshot_text, standing_dict, standing_text
from console.probes.collect import snapshot_all
from console.runbook.matrix import evaluate, matrix_of
from console.runbook.serialize import snapshot_dict

if TYPE_CHECKING:
    from console.config.model import Config
    from console.engine.standing import Standing


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="one snapshot: flags (3 sources), health, latency, errors, memory, recommendation",
        description="One snapshot of each environment, with the decision matrix's recommendation and what "
        "the journal says of it: the rollback in effect (and how to restore it), requests waiting.",
        epilog="exit codes: 0 every environment was assessed; 1 something could not be assessed (a host out "
        "of reach, a probe that failed or timed out, a signal with nothing to compute it from: the "
        'recommendation says "cannot assess" and why); 2 bad usage or config',
    )
    p.add_argument("env", nargs="?", metavar="ENV", help="one environment (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    names = environment_names(config, args.env)
    snapshots = asyncio.run(snapshot_all(config, names))
    recs = [evaluate(matrix_of(config, config.environment(n)), s) for n, s in zip(names, snapshots, strict=True)]
    standings, error = journal_standing(config, names)
    if args.json:
        redact = log_redactor(config)
        print_json(
            {
                "environments": [
                    {
                        **snapshot_dict(s, r, redact),
                        "journal": standing_dict(standings.get(s.environment), error, s),
                    }
                    for s, r in zip(snapshots, recs, strict=True)
                ]
            }
        )
    else:
        print(
            "\n\n".join(
                snapshot_text(s, r, config) + standing_text(standings.get(s.environment), error, s)
                for s, r in zip(snapshots, recs, strict=True)
            )
        )
    # What could not be assessed is not "fine": a script must not read exit 0 as all clear.
    return EXIT_OK if all(r.assessed for r in recs) else EXIT_FAILED


def journal_standing(config: Config, names: list[str]) -> tuple[dict[str, Standing], str | None]:
    """What the journal says of each environment (the rollback in effect, open requests), or
    why it cannot be read: the probes' answer stands either way."""
    from console.engine.standing import Standing, drill_start, standings_from_index
    from console.journal import Journal, JournalError
    from console.plans import PLANS

    if not config.journal_path.exists():
        return {n: Standing(n) for n in names}, None  # no run recorded yet: nothing in effect, nothing open
    try:
        journal = Journal(config.journal_path)
        since = None
        if config.drill:  # only this drill's runs: not an earlier one's, on a simulation long gone
            since = drill_start(journal, config.path)
            if since is None:
                return {}, "cannot tell this drill's runs from an earlier drill's (no drill_started record, no config)"
        found = standings_from_index(journal, config, PLANS, names, drills=config.drill, since=since)
    except (JournalError, OSError) as exc:
        return {}, str(exc)
    return found, None
