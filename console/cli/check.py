"""``rollback-console check ENV [--json]``: the profile's validations; exit 1 if any fails."""

from __future__ import annotations

import argparse
import asyncio

from console.cli import EXIT_FAILED, EXIT_OK
from console.cli.common import config_from_args, environment_names, print_json
from console.cli.render import checks_text, log_redactor
from console.probes.collect import checked_snapshot
from console.profile import profile_of
from console.runbook.serialize import checks_dict
from console.runbook.validation import validate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="post-rollback validation: exit 0 all pass, 1 some fail")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    (name,) = environment_names(config, args.env)
    snapshot = asyncio.run(checked_snapshot(config, name))
    checks = validate(snapshot, config.thresholds, profile_of(config.environment(name)).validations)
    passed = all(c.passed for c in checks)
    redact = log_redactor(config)
    if args.json:
        print_json({"environment": name, "passed": passed, "checks": checks_dict(checks, redact)})
    else:
        print(checks_text(name, checks, redact))
    return EXIT_OK if passed else EXIT_FAILED
