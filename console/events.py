"""What the runner tells the world while it works. The CLI prints these, the console
shows them, and the journal records them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "run_started",
    "step_started",
    "step_intent",  # what a step is about to change, journaled before the change
    "output",
    "step_finished",
    "step_failed",
    "decision",
    "validation",
    "run_finished",
    "note",
]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    run_id: str
    step: str | None = None  # step id
    host: str | None = None  # host name, for host-scoped steps
    message: str = ""  # one line for people
    data: dict[str, Any] = field(default_factory=dict)  # for the journal; never secrets
    ts: float = field(default_factory=time.time)
