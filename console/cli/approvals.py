"""``approve``, ``reject``, ``withdraw`` and ``requests``: production approvals from the
command line (the console offers the same on its dashboard; see console/engine/approvals.py
for who may do what).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from console.cli import EXIT_FAILED, EXIT_OK, UsageError
from console.cli.common import config_from_args, print_json
from console.engine.approvals import clock
from console.engine.session import Engine, RunRefused
from console.journal import JournalError
from console.journal.requests import RequestState
from console.plans import PLANS
from console.safe_text import clean


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("approve", help="a second person approves a pending production rollback")
    a.add_argument("run_id", metavar="RUN_ID")
    a.add_argument("--yes", action="store_true", help="on a terminal: approve without asking (the plan is shown)")
    a.set_defaults(func=run_approve)
    r = sub.add_parser("reject", help="a second person rejects a pending production rollback")
    r.add_argument("run_id", metavar="RUN_ID")
    r.add_argument("--reason", default="", metavar="TEXT", help="why (journaled; the requester sees it)")
    r.set_defaults(func=run_reject)
    w = sub.add_parser(
        "withdraw",
        help="take back a production request before it runs (its requester; anyone else with --reason)",
    )
    w.add_argument("run_id", metavar="RUN_ID")
    w.add_argument("--reason", default="", metavar="TEXT", help="why (required unless it is your own request)")
    w.set_defaults(func=run_withdraw)
    q = sub.add_parser("requests", help="production requests waiting for approval or for their requester")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=run_requests)


def describe_request(state: RequestState, now: float) -> str:
    """A request as an approver reads it: who asks what, why, until when, and the plan."""
    left = state.seconds_left(now)
    lapse = f", lapses in {clock(left)}" if left is not None and state.open else ""
    lines = [
        f"request {state.run_id}: {state.title} on {state.env}",
        f"  requested by {state.requester}{_when(state.requested_at)}{lapse}",
        f"  reason: {state.request_reason or '-'}",
        f"  now: {state.describe()}",
    ]
    if state.preview_text:
        lines += ["", "What it will run (the preview its requester confirmed):", state.preview_text]
    return clean("\n".join(lines))


def _when(when: object) -> str:
    return f" at {when:%Y-%m-%d %H:%M:%S} UTC" if when is not None else ""


def _engine_command(args: argparse.Namespace, act) -> int:  # type: ignore[no-untyped-def]
    config = config_from_args(args)

    async def go() -> int:
        engine = Engine(config, plans=PLANS)
        try:
            return await act(engine)
        except (RunRefused, JournalError) as exc:
            raise UsageError(str(exc)) from None
        finally:
            await engine.close()

    return asyncio.run(go())


def run_approve(args: argparse.Namespace) -> int:
    async def act(engine: Engine) -> int:
        state = engine.expire_if_lapsed(engine.request_state(args.run_id))
        print(describe_request(state, time.time()))
        if state.status == "pending" and not args.yes and sys.stdin.isatty() and sys.stdout.isatty():
            answer = await asyncio.to_thread(input, f"\nApprove request {state.run_id}? [y/N]: ")
            if answer.strip().lower() not in ("y", "yes"):
                print("not approved: nothing was recorded")
                return EXIT_FAILED
        state = engine.approve(state.run_id)
        print(
            f"\nrequest {state.run_id} approved by {engine.who.user}: it runs when {state.requester} starts it — "
            f"their waiting console or command goes ahead now; otherwise `rollback-console start {state.run_id}` "
            f"before it lapses{_lapse(state)}"
        )
        return EXIT_OK

    return _engine_command(args, act)


def run_reject(args: argparse.Namespace) -> int:
    return _stop_request(args, "rejected")


def run_withdraw(args: argparse.Namespace) -> int:
    return _stop_request(args, "withdrawn")


def _stop_request(args: argparse.Namespace, how: str) -> int:
    """Reject or withdraw: the request will not run, and nothing was changed."""

    async def act(engine: Engine) -> int:
        stop = engine.reject if how == "rejected" else engine.withdraw
        state = stop(args.run_id, args.reason)
        why = f" ({state.reason})" if state.reason else ""
        print(f"request {state.run_id} {how} by {engine.who.user}{why}: it will not run; nothing was changed")
        return EXIT_OK

    return _engine_command(args, act)


def run_requests(args: argparse.Namespace) -> int:
    async def act(engine: Engine) -> int:
        now = time.time()
        open_ = engine.open_requests()
        if args.json:
            print_json([engine.journal.run(s.run_id).to_dict() for s in open_])
        elif not open_:
            print("No production request is waiting.")
        else:
            print("\n\n".join(describe_request(s, now) for s in open_))
        return EXIT_OK

    return _engine_command(args, act)


def _lapse(state: RequestState) -> str:
    return f" at {state.expires_at:%H:%M:%S} UTC" if state.expires_at else ""
