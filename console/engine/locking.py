"""A run's hold on its environment's lock: write-ahead (``lock_intent`` is journaled before
the lock is taken), and taking over the lock of a holder that is provably gone.

Provably gone means: the holder ran on this very machine and its process no longer
exists. A stale heartbeat is not proof (that console may be alive behind a broken
network), so a holder on another machine still needs ``unlock --reason``. A dead holder's
lock is taken over only when nothing of its run is left to finish: the run being resumed
or undone is that run, or its run had finished, or it never started (the journal has its
lock intent and nothing after: a change is always preceded by its intent). A run the
journal does not know at all proves nothing: that lock still needs ``unlock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

from console import failpoints
from console.config.model import Environment
from console.journal import Journal, RunNotFound, pid_alive
from console.journal.runs import FINISHED, NEVER_STARTED
from console.lock import EnvironmentLock, LockError, LockHeld, LockHolder, LockInfo
from console.transport.base import Transport

logger = logging.getLogger(__name__)


class RunRefused(Exception):
    """The run cannot start (authorization, lock, plan); the message says why and what to do."""


def holder_gone(info: LockInfo) -> str | None:
    """Why the lock's holder is known to be gone, or None if it may still be running."""
    if info.stale:
        return f"no heartbeat for {info.silence_s:.0f}s"
    return holder_dead(info)


def holder_dead(info: LockInfo) -> str | None:
    """Why the holder is provably dead (its process on this machine is gone), else None."""
    if info.complete and info.pid and info.bastion == socket.gethostname() and not pid_alive(info.pid):
        # Only a pid on this very machine can be checked; elsewhere only staleness tells.
        return f"its console process (pid {info.pid}) on {info.bastion} is no longer running"
    return None


def takeover_reason(info: LockInfo, run_id: str, journal: Journal) -> str | None:
    """Why run ``run_id`` may take over this lock; None when it must not."""
    dead = holder_dead(info)
    if dead is None:
        return None
    if info.run_id == run_id:
        return f"{dead}, and it held the lock for this very run"
    if not info.run_id:
        return None
    mine = journal.run_records(info.run_id)
    if not mine:
        return None  # not in this journal: nothing tells what that run did
    if all(r["type"] in NEVER_STARTED for r in mine):
        return f"{dead}, and its run {info.run_id} never started (the journal has its lock intent, nothing after)"
    try:
        holder_run = journal.run(info.run_id)
    except RunNotFound:
        return None
    if holder_run.outcome in FINISHED:
        return f"{dead}, and its run {holder_run.run_id} had already {holder_run.outcome}"
    return None


def refusal(info: LockInfo, environment: str) -> str:
    """Why a run may not take the lock, and the way out."""
    gone = holder_gone(info)
    if not gone:
        return info.describe()
    unlock = f"`rollback-console unlock --env {environment} --reason TEXT`"
    run = info.run_id
    if run and holder_dead(info):
        return (
            f"{info.describe()} Its holder is gone ({gone}): `rollback-console resume {run}` or "
            f"`rollback-console undo {run}` takes the lock over; or break it deliberately with {unlock}."
        )
    then = f", then resume or undo run {run}." if run else "."
    return f"{info.describe()} Its holder is gone ({gone}): break the lock deliberately with {unlock}{then}"


@contextlib.asynccontextmanager
async def run_lock(
    journal: Journal, env: Environment, transport: Transport, run_id: str, about: dict[str, Any]
) -> AsyncIterator[EnvironmentLock]:
    """Hold ``env``'s lock for run ``run_id``: journal the intent first, take over a dead
    holder's lock where that is safe, refuse (RunRefused) otherwise."""
    lock = EnvironmentLock.for_environment(env, transport, LockHolder.current(run_id))
    try:
        found = await lock.inspect()
    except LockError as exc:
        raise RunRefused(str(exc)) from None
    why = None
    if found is not None:
        why = await asyncio.to_thread(takeover_reason, found, run_id, journal)  # reads the journal
        if why is None:
            raise RunRefused(refusal(found, env.name))
    await journal.append_async(
        "lock_intent", run=run_id, env=env.name, data={**about, "lock": lock.where, "take_over": why}
    )
    failpoints.hit("lock/after-intent")
    try:
        if found is not None and why is not None:
            broken = await lock.break_lock(f"taken over by run {run_id}: {why}", expected_token=found.token)
            if broken is not None:
                await journal.append_async(
                    "lock_taken_over", run=run_id, env=env.name, data={**broken.to_dict(), "why": why}
                )
                logger.warning("took over the lock of %r from run %s: %s", env.name, found.run_id, why)
        await lock.acquire()
    except LockHeld as exc:  # someone took it between the look and the mkdir: nothing changed
        await journal.append_async("run_refused", run=run_id, env=env.name, data={"why": str(exc)})
        raise RunRefused(refusal(exc.info, env.name)) from None
    except LockError as exc:
        await journal.append_async("run_refused", run=run_id, env=env.name, data={"why": str(exc)})
        raise RunRefused(str(exc)) from None
    async with lock.held(acquire=False):
        failpoints.hit("lock/after-effect")
        yield lock
