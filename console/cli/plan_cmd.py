"""``rollback-console plan ACTION --env ENV``: preview everything, change nothing."""

from __future__ import annotations

import argparse
import asyncio
import sys

from console.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from console.cli.common import config_from_args, environment_names
from console.engine.plan import RunContext
from console.engine.preview import preview, preview_problems
from console.plans import PlanError, build_plan
from console.probes.collect import Prober


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="preview a rollback: exact edits, commands, SQL; changes nothing",
        epilog="exit codes: 0 a complete preview (it says NOTHING TO CHANGE where every step is done); 1 the "
        "preview is incomplete (what could not be read is named); 2 bad usage, or the rollback would be refused "
        "now (the reason is printed, as `rollback` would give it)",
    )
    p.add_argument(
        "action",
        metavar="ACTION",
        help="one of the environment's profile's rollbacks, e.g. quick (an unknown one is refused with the list)",
    )
    p.add_argument("--env", required=True, metavar="ENV")
    p.add_argument("--reset-hard", action="store_true", help="code: preview `git reset --hard` instead of revert")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    (name,) = environment_names(config, args.env)
    env = config.environment(name)
    try:
        plan = build_plan(args.action, env, config, {"reset_hard": args.reset_hard})
    except PlanError as exc:
        raise UsageError(str(exc)) from None

    async def go() -> tuple[str, list[str], str | None]:
        async with Prober(config) as prober:
            ctx = RunContext("preview", config, env, prober.pool, prober, emit=lambda e: None)
            previewed = await preview(ctx, plan)
            return previewed.text(), preview_problems(list(previewed.steps)), previewed.refusal

    text, problems, refusal = asyncio.run(go())
    print(text)
    if problems:  # an incomplete preview is not a plan to act on
        print(f"\nthe preview is incomplete: {'; '.join(problems)}", file=sys.stderr)
        return EXIT_FAILED
    if refusal:  # known now: the rollback would be refused before it changed anything (its exit code too)
        print(f"\n`rollback {args.action}` would be refused now: {refusal}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
