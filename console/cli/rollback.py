"""``rollback``, ``restore``, ``resume``, ``undo``, ``unlock``: the engine from the command line.

The plan is shown first; nothing runs until the operator confirms (or passes --yes).
A failed step asks: retry, fix (the runbook's known fix), skip with a reason, undo, abort.
Production without an approver asks for approval and waits, saying how long (the
approvals commands themselves are in approvals.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from typing import Any, TextIO

from console.cli import EXIT_FAILED, EXIT_OK, UsageError
from console.cli.common import config_from_args, environment_names, number_between, print_json
from console.config.model import Config
from console.engine.approvals import clock
from console.engine.run import Run
from console.engine.runner import Decision, Failure, RunResult, abort_on_failure
from console.engine.session import Engine, RunRefused, RunRequest
from console.events import Event
from console.journal import JournalError, RunNotFound
from console.journal.grid import host_grid
from console.journal.records import iso
from console.journal.runs import NEVER_STARTED, REQUEST_OUTCOMES
from console.plans import PLANS
from console.safe_text import clean

STILL_WAITING_EVERY_S = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollback", help="run a rollback: preview, authorize, lock, run, validate, record")
    p.add_argument(
        "action",
        metavar="ACTION",
        help="one of the environment's profile's rollbacks, e.g. quick (an unknown one is refused with the list)",
    )
    _common(p)
    p.add_argument(
        "--reset-hard",
        action="store_true",
        help="code: `git reset --hard HEAD~1` instead of `git revert` (DESTRUCTIVE; asks you to type the "
        "environment name, or pass --confirm-destructive ENV)",
    )
    p.add_argument("--confirm-destructive", metavar="ENV", help="confirm a destructive step without a terminal")
    p.set_defaults(func=run_rollback)

    r = sub.add_parser(
        "restore", help="put back what a rollback changed (flags exactly as before; migration 004 from the kept copy)"
    )
    _common(r)
    r.add_argument("--run", metavar="RUN_ID", help="the rollback to restore (default: the latest on ENV)")
    r.set_defaults(func=run_restore)

    for name, helptext in (
        ("resume", "continue a rollback a crash or kill -9 interrupted"),
        ("undo", "undo what a rollback (e.g. an interrupted one) changed"),
        ("start", "start your production request once a second person approved it"),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("run_id", metavar="RUN_ID")
        q.add_argument("--yes", action="store_true", help="do not ask before running")
        q.add_argument("--json", action="store_true", help="one JSON document on stdout; progress on stderr")
        q.add_argument("--confirm-destructive", metavar="ENV", help="confirm a destructive step without a terminal")
        q.set_defaults(func={"resume": run_resume, "undo": run_undo, "start": run_start}[name])

    u = sub.add_parser(
        "unlock",
        help="break an environment's rollback lock left by a console that died (journaled as lock_broken)",
    )
    u.add_argument("--env", required=True, metavar="ENV")
    u.add_argument("--reason", required=True, metavar="TEXT", help="why it is safe to break (goes into the journal)")
    u.add_argument(
        "--force",
        action="store_true",
        help="break it even though its holder may still be running (it is not stale and not known dead)",
    )
    u.set_defaults(func=run_unlock)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", required=True, metavar="ENV")
    p.add_argument("--reason", default="", metavar="TEXT", help="why (goes into the journal and the history table)")
    p.add_argument("--approved-by", metavar="NAME", help="production: the team lead or on-call who approved it")
    p.add_argument(
        "--emergency",
        metavar="LEVEL",
        help="emergency override of the approval, at one of the profile's levels (Phase 4: P0, P1); needs --reason",
    )
    p.add_argument("--yes", action="store_true", help="do not ask before running (needed without a terminal)")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON document on stdout (outcome, per-host results); progress goes to stderr",
    )
    p.add_argument(
        "--wait",
        type=number_between(0, 7 * 24 * 3600, " seconds"),
        default=None,
        metavar="SECONDS",
        help="production without an approver: how long to wait for `approve RUN_ID` (default: until the "
        "request lapses, [approvals] expire_after_s, 15 min unless configured)",
    )


class Printer:
    """Events as lines: a timer since the start, the step, the host, the outcome."""

    def __init__(self, target_s: float | None = None, stream: TextIO | None = None) -> None:
        self.start = time.monotonic()
        self.target_s = target_s
        self.stream = stream

    def print(self, *args: object, **kw: Any) -> None:
        print(*args, **kw, file=self.stream or sys.stdout)

    def __call__(self, e: Event) -> None:
        e = replace(e, message=clean(e.message))
        t = time.monotonic() - self.start
        stamp = f"[{int(t // 60):02d}:{t % 60:04.1f}]"
        host = f" ({e.host})" if e.host else ""
        if e.kind == "step_started":
            self.print(f"{stamp} ▶ {e.message}{host}", flush=True)
        elif e.kind == "output":
            self.print(f"           │ {e.message}", flush=True)
        elif e.kind == "step_finished":
            self.print(f"{stamp} ✓ {e.message}{host}  {e.data.get('elapsed_s', 0):.2f}s", flush=True)
        elif e.kind == "step_failed":
            self.print(f"{stamp} ✗ {e.message}{host}", flush=True)
            if e.data.get("troubleshooting"):
                self.print(f"           runbook troubleshooting — {e.data['troubleshooting']}")
            if e.data.get("output"):
                for line in clean(str(e.data["output"])).splitlines()[-15:]:
                    self.print(f"           │ {line}")
        elif e.kind in ("note", "decision"):
            self.print(f"{stamp} · {e.message}{host}", flush=True)
        elif e.kind == "validation":
            for c in e.data.get("checks", []):
                self.print(f"           {'PASS' if c['passed'] else 'FAIL'}  {c['title']}: {c['detail']}", flush=True)


async def ask(failure: Failure) -> Decision:
    """Interactive answer to a failed step."""
    print(f"\n{failure.describe()}")
    for f in failure.hosts.values():
        if f.remedy:
            heading = f" ({f.remedy.troubleshooting})" if f.remedy.troubleshooting else ""
            print(f"  known fix{heading}: {f.remedy.title}")
            for c in f.remedy.commands:
                print(f"    $ {c}")
            break
    options = "[r]etry, " + ("[f]ix, " if failure.fixable else "") + "[s]kip, [u]ndo, [a]bort"
    while True:
        answer = (await asyncio.to_thread(input, f"What now? {options}: ")).strip().lower()
        if answer in ("r", "retry"):
            return Decision("retry")
        if answer in ("f", "fix") and failure.fixable:
            return Decision("fix")
        if answer in ("u", "undo"):
            return Decision("undo")
        if answer in ("a", "abort"):
            return Decision("abort", "operator aborted; the run can be resumed or undone")
        if answer in ("s", "skip"):
            reason = (await asyncio.to_thread(input, "Reason for skipping (recorded): ")).strip()
            if reason:
                return Decision("skip", reason)
            print("a skip needs a reason")


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _confirm(question: str) -> bool:
    return input(f"{question} [y/N]: ").strip().lower() in ("y", "yes")


def _request(args: argparse.Namespace, config: Config, action: str) -> RunRequest:
    (name,) = environment_names(config, args.env)
    options = {"reset_hard": True} if getattr(args, "reset_hard", False) else {}
    return RunRequest(
        name,
        action,
        reason=args.reason,
        approved_by=args.approved_by,
        emergency=args.emergency,
        options=options,
        restores=getattr(args, "run", None),
    )


def run_rollback(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    return asyncio.run(_run(args, config, _request(args, config, args.action)))


def run_restore(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    return asyncio.run(_run(args, config, _request(args, config, "restore")))


async def _run(args: argparse.Namespace, config: Config, request: RunRequest) -> int:
    engine = Engine(config, plans=PLANS)
    json_out = getattr(args, "json", False)
    human = sys.stderr if json_out else sys.stdout

    def say(*a: object) -> None:  # lines for people; with --json, stdout is the document's
        print(*a, file=human, flush=True)

    try:
        try:
            authorization = engine.authorize(request)
            if not authorization.allowed:  # say so at once, before the preview's reads
                say(_will_wait(engine, args, request.environment))
            run = await engine.prepare(request)
        except RunRefused as exc:
            raise UsageError(str(exc)) from None
        say(run.preview_text())
        refused = run.refusal()
        if refused:  # knowable before anything changes: not a run, nothing to resume or undo
            raise UsageError(f"refused: {refused}")
        say(f"\nauthorization: {authorization.describe()}")
        question = "Ask for approval of this on" if not authorization.allowed else "Run this on"
        if not await _confirmed(args, f"{question} {request.environment}?"):
            say("nothing was changed")
            return EXIT_FAILED
        await _destructive_confirmed(args, run)
        run = run.confirm().authorized(authorization)
        if run.pending:
            run = await engine.request_approval(run)
            run = await _wait_for_approval(engine, run, args, say)
        return await _execute(engine, run, json_out, human)
    except RunRefused as exc:
        raise UsageError(f"refused: {exc}") from None
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    finally:
        await engine.close()


def _wait_s(engine: Engine, args: argparse.Namespace) -> float:
    lapse = engine.config.approvals.expire_after_s
    return lapse if args.wait is None else min(args.wait, lapse)


def _will_wait(engine: Engine, args: argparse.Namespace, environment: str) -> str:
    wait_s, lapse = _wait_s(engine, args), engine.config.approvals.expire_after_s
    until = "until the request lapses" if wait_s >= lapse else f"(the request itself lapses after {clock(lapse)})"
    return (
        f"Production ({environment}): a second person — a team lead or on-call — must approve this rollback. "
        f"Once you confirm the plan below, this command asks for approval and waits up to {clock(wait_s)} "
        f"{until}."
    )


async def _confirmed(args: argparse.Namespace, question: str) -> bool:
    if args.yes:
        return True
    if not _interactive():
        raise UsageError("no terminal to confirm on: pass --yes to run without asking")
    return await asyncio.to_thread(_confirm, question)


async def _destructive_confirmed(args: argparse.Namespace, run: Run) -> None:
    if not run.destructive:
        return
    environment = run.environment
    confirmed = getattr(args, "confirm_destructive", None) == environment
    if not confirmed and _interactive():
        typed = await asyncio.to_thread(input, f"DESTRUCTIVE: type the environment name ({environment}) to confirm: ")
        confirmed = typed.strip() == environment
    if not confirmed:
        raise UsageError("a destructive step needs explicit confirmation: nothing was changed")


async def _wait_for_approval(engine: Engine, run: Run, args: argparse.Namespace, say: Any) -> Run:
    """Wait, saying how long, and what became of the request; the run approved, or a
    refusal (exit 2: nothing changed)."""
    run_id = run.run_id
    assert run_id is not None
    wait_s = _wait_s(engine, args)
    state = engine.request_state(run_id)
    lapses = _at(state.expires_at)
    say(f"\nrequested approval: run {run_id}, lapses at {lapses}")
    say(f"  a team lead or on-call approves it in their console, or with: rollback-console approve {run_id}")
    say(
        f"waiting up to {clock(wait_s)} (until {_at_s(time.time() + wait_s)}); Ctrl-C stops waiting "
        f"(the request stays open until {lapses}; `rollback-console withdraw {run_id}` takes it back)…"
    )
    next_note = time.monotonic() + STILL_WAITING_EVERY_S
    end = time.monotonic() + wait_s

    def tick(_state: object) -> None:
        nonlocal next_note
        if time.monotonic() >= next_note:
            next_note += STILL_WAITING_EVERY_S
            say(f"  still waiting for approval of {run_id}: {clock(end - time.monotonic())} left")

    try:
        state = await engine.wait_for_approval(run, wait_s=wait_s, on_tick=tick)
    except asyncio.CancelledError:
        say(f"\nstopped waiting: nothing was changed; request {run_id} stays open until {lapses}")
        say(f"  to take it back: rollback-console withdraw {run_id}")
        raise
    if state.status == "approved":
        say(f"approved by {state.approver} at {_at(state.approved_at)}")
        return run.approved(state.approver or "?", engine.who.user)
    if state.status == "pending":  # this command stopped waiting; the request stays open
        raise UsageError(
            f"refused: no approval within {wait_s:.0f}s: nothing was changed. Request {run_id} stays pending "
            f"until {lapses}: once a team lead or on-call approves it (`rollback-console approve {run_id}`), start "
            f"it with `rollback-console start {run_id}`; or withdraw it: `rollback-console withdraw {run_id}`"
        )
    if state.status == "expired":
        raise UsageError(
            f"refused: no approval before request {run_id} lapsed at {lapses} (journaled as expired): nothing "
            "was changed; request it again if it is still needed"
        )
    raise UsageError(f"refused: request {run_id} was {state.describe()}: nothing was changed")


def _at(when: Any) -> str:
    return "never" if when is None else _at_s(when.timestamp())


def _at_s(ts: float) -> str:
    return iso(ts)[11:19] + " UTC"


async def _execute(engine: Engine, run: Run, json_out: bool, human: TextIO) -> int:
    engine.on_event = Printer(run.target_s, human)
    decide = ask if _interactive() and not json_out else abort_on_failure
    outcome = await engine.execute(run, decide)
    expected = "undone" if run.undo else "succeeded"
    if json_out:
        return _finish_json(engine, outcome.run_id, outcome.result, expected=expected)
    target = "" if run.undo else run.target
    return _finish(outcome.run_id, outcome.result, target, expected=expected)


def _finish(run_id: str, result, target: str, *, expected: str = "succeeded") -> int:
    """Print the outcome; exit 0 when the run did what was asked (for ``undo``: "undone")."""
    target_text = f" (runbook target {target})" if target else ""
    print(f"\nrun {run_id}: {result.outcome} in {result.duration_s:.1f}s{target_text}")
    if result.skipped:
        print("skipped: " + "; ".join(result.skipped))
    if result.failed_hosts and result.failed_hosts != ("*",):
        print(f"failed on {len(result.failed_hosts)} host(s): {', '.join(result.failed_hosts)}")
    if result.not_started:
        print(f"not started (nothing changed there): {', '.join(result.not_started)}")
    if result.outcome != expected:
        if result.outcome in ("failed", "aborted"):
            print(f"  to continue: rollback-console resume {run_id}")
            print(f"  to put things back: rollback-console undo {run_id}")
        return EXIT_FAILED
    print(f"  report: rollback-console report {run_id}")
    return EXIT_OK


def _finish_json(engine: Engine, run_id: str, result: RunResult, *, expected: str = "succeeded") -> int:
    """One JSON document: the outcome and each host's steps (the fleet grid)."""
    run = engine.journal.run(run_id)
    print_json(
        {
            "run_id": run_id,
            "environment": run.env,
            "action": run.action,
            "outcome": result.outcome,
            "duration_s": round(result.duration_s, 3),
            "target_s": run.plan.get("target_s"),
            "skipped": list(result.skipped),
            **host_grid(run),
        }
    )
    return EXIT_OK if result.outcome == expected else EXIT_FAILED


def run_resume(args: argparse.Namespace) -> int:
    return _again(args, undo=False)


def run_undo(args: argparse.Namespace) -> int:
    return _again(args, undo=True)


def _again(args: argparse.Namespace, *, undo: bool) -> int:
    config = config_from_args(args)

    async def go() -> int:
        engine = Engine(config, plans=PLANS)
        human = sys.stderr if args.json else sys.stdout
        try:
            try:
                run = engine.journal.run(args.run_id)
            except RunNotFound:
                never = _never_started(engine, args.run_id)
                if never is None:
                    raise
                if undo:  # every change is preceded by its run's records: there are none
                    print(f"{never}: nothing to undo: no change was made")
                    return EXIT_OK
                raise UsageError(f"{never}: nothing to resume; run the rollback again") from None
            if run.outcome in REQUEST_OUTCOMES:
                if undo:
                    print(f"run {run.run_id} never started ({run.outcome_text()}): nothing to undo: no change was made")
                    return EXIT_OK
                raise UsageError(
                    f"run {run.run_id} never started: it is a request ({run.outcome_text()}); once approved, its "
                    f"requester starts it with `rollback-console start {run.run_id}`"
                )
            if not undo and run.outcome not in ("interrupted", "failed", "aborted"):
                raise UsageError(f"run {run.run_id} is {run.outcome}: only an interrupted or failed run is resumed")
            done = "; ".join(f"{step} on {', '.join(sorted(hosts))}" for step, hosts in run.progress().items())
            print(
                f"run {run.run_id}: {run.title} on {run.env}, {run.outcome}; done so far: {done or 'nothing'}",
                file=human,
            )
            question = "Undo what it changed?" if undo else "Resume it from where it stopped?"
            if not await _confirmed(args, question):
                return EXIT_FAILED
            return await _execute(engine, engine.again(run, undo=undo), args.json, human)
        except (RunRefused, JournalError) as exc:
            raise UsageError(str(exc)) from None
        finally:
            await engine.close()

    return asyncio.run(go())


async def _start_approved(engine: Engine, args: argparse.Namespace, run_id: str, human: TextIO) -> int:
    """The requester starts their approved request: the plan as it would run now, held to
    the one they confirmed and that was approved."""
    run = await engine.start_approved(run_id)
    assert run.confirmed is not None and run.authorization is not None
    print(run.preview_text(), file=human)
    difference = run.confirmed.difference(run.preview) if run.preview else None
    if difference:
        raise UsageError(
            f"refused: what would run now differs from what you confirmed and {run.authorization.approver} "
            f"approved (it changed in between): nothing was changed. Withdraw request {run_id} "
            f"(`rollback-console withdraw {run_id}`) and request it again.\n{difference}"
        )
    refused = run.refusal()
    if refused:
        raise UsageError(f"refused: {refused}")
    print(f"\nauthorization: {run.authorization.describe()}", file=human)
    if not await _confirmed(args, f"Start request {run_id} on {run.environment} now?"):
        print("nothing was changed", file=human)
        return EXIT_FAILED
    await _destructive_confirmed(args, run)
    return await _execute(engine, run, args.json, human)


def run_start(args: argparse.Namespace) -> int:
    config = config_from_args(args)

    async def go() -> int:
        engine = Engine(config, plans=PLANS)
        try:
            return await _start_approved(engine, args, args.run_id, sys.stderr if args.json else sys.stdout)
        except (RunRefused, JournalError) as exc:
            raise UsageError(str(exc)) from None
        finally:
            await engine.close()

    return asyncio.run(go())


def _never_started(engine: Engine, run_id: str) -> str | None:
    """For a run id the journal knows only from its lock (refused, or killed before it
    started): what happened to it. None if the journal does not know the id at all."""
    mine = engine.journal.run_records(run_id)
    if not mine or not all(r["type"] in NEVER_STARTED for r in mine):
        return None
    refused = [r for r in mine if r["type"] == "run_refused"]
    how = "was refused before it started" if refused else "was stopped before it started (no run_started record)"
    return f"run {run_id} {how}"


def run_unlock(args: argparse.Namespace) -> int:
    """Break a lock deliberately: only a stale one, or one whose process is gone, unless --force."""
    config = config_from_args(args)
    (name,) = environment_names(config, args.env)

    async def go() -> int:
        engine = Engine(config, plans=PLANS)
        try:
            try:
                broken, why = await engine.break_lock(name, args.reason, force=args.force)
            except RunRefused as exc:
                raise UsageError(str(exc)) from None
            if broken is None:
                print(f"environment {name!r} is not locked: nothing to break")
                return EXIT_OK
            print(broken.describe())
            print(f"({why}; journaled as lock_broken)")
            if broken.info.run_id:
                print(f"  that run: rollback-console resume {broken.info.run_id}  or  undo {broken.info.run_id}")
            return EXIT_OK
        except JournalError as exc:
            raise UsageError(str(exc)) from None
        finally:
            await engine.close()

    return asyncio.run(go())
