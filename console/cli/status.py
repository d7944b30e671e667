"""``rollback-console status [ENV] [--json]``: one snapshot of each environment."""

from __future__ import annotations

import argparse
import asyncio

from console.cli import EXIT_OK
from console.cli.common import config_from_args, environment_names, print_json
from console.cli.render import snapshot_text
from console.matrix import evaluate
from console.probes.collect import snapshot_all
from console.probes.serialize import snapshot_dict


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", help="one snapshot: flags (3 sources), health, latency, errors, memory, recommendation"
    )
    p.add_argument("env", nargs="?", metavar="ENV", help="one environment (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    names = environment_names(config, args.env)
    snapshots = asyncio.run(snapshot_all(config, names))
    recs = [evaluate(config.decision_matrix, s) for s in snapshots]
    if args.json:
        print_json({"environments": [snapshot_dict(s, r) for s, r in zip(snapshots, recs, strict=True)]})
    else:
        print("\n\n".join(snapshot_text(s, r, config) for s, r in zip(snapshots, recs, strict=True)))
    return EXIT_OK
