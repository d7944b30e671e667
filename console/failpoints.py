"""Named crash points, armed only through the environment (the way etcd's gofail works).

    ROLLBACK_CONSOLE_FAILPOINTS="edit-env/after-effect=kill"
    ROLLBACK_CONSOLE_FAILPOINTS="restart/after-intent@staging-2=kill;db-rollback/after-copy=sleep(1.5)"

A point is ``STEP/WHERE`` (``undo:STEP/WHERE`` in the undo phase), or one of the run's
own points (``lock/after-intent`` …). ``@HOST`` arms it for one host only. Terms:
``kill`` (SIGKILL this process: no cleanup, no lock release, no last record), ``sleep(S)``,
``error`` (raise FailpointError, as a bug would). Unarmed, ``hit`` is one dict lookup.

The points are not listed by hand: the runner places them around every step's intent,
effect and record (see ``console.engine.plan.step_points``), and ``plan_points`` there derives the same names from
a plan, so a new step is covered by the crash matrix without anyone adding it.
``ROLLBACK_CONSOLE_FAILPOINTS_TRACE=FILE`` appends every point reached to FILE (tests use it
to check that the points a run reaches are exactly the ones ``plan_points`` names).
"""

from __future__ import annotations

import os
import re
import signal
import time

ENV = "ROLLBACK_CONSOLE_FAILPOINTS"
TRACE_ENV = "ROLLBACK_CONSOLE_FAILPOINTS_TRACE"

# The run's own points, in the order a run reaches them.
BEFORE_STEPS = ("lock/after-intent", "lock/after-effect", "run/after-start")
AFTER_STEPS = ("run/before-finish", "lock/before-release")

_TERM = re.compile(r"^(kill|error|sleep\((\d+(?:\.\d+)?)\))$")


class FailpointError(RuntimeError):
    """Raised by a point armed with ``error``."""


def parse(spec: str) -> dict[str, str]:
    """``name[@host]=term;…`` → {name[@host]: term}; ValueError on a malformed term."""
    armed: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        name, sep, term = item.partition("=")
        if not sep or not name.strip() or not _TERM.match(term.strip()):
            raise ValueError(f"{ENV}: {item!r} is not NAME[@HOST]=kill|error|sleep(SECONDS)")
        armed[name.strip()] = term.strip()
    return armed


_armed: dict[str, str] = parse(os.environ.get(ENV, ""))
_trace: str | None = os.environ.get(TRACE_ENV) or None


def armed(name: str) -> bool:
    """Is ``name`` armed? For points outside a run's (the journal writer's): those are not
    traced, as the trace is the run's points, which ``plan_points`` must name exactly."""
    return name in _armed


def hit(name: str, host: str | None = None, phase: str = "run") -> None:
    """The process reached point ``name`` (on ``host``): do what it is armed with, if anything."""
    if not _armed and _trace is None:
        return
    full = name if phase == "run" else f"{phase}:{name}"
    if _trace is not None:
        fd = os.open(_trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{full}\n".encode())
        finally:
            os.close(fd)
    term = _armed.get(f"{full}@{host}") if host else None
    term = term or _armed.get(full)
    if term is None:
        return
    if term == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # SIGKILL is not handled: never gets here
    if term == "error":
        raise FailpointError(f"failpoint {full} armed with error")
    match = _TERM.match(term)
    if match and match.group(2):
        time.sleep(float(match.group(2)))
