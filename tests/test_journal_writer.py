"""Appends off the event loop: the order records were emitted in is the order on disk, the
loop goes on while a write is fsync'd, and write-ahead holds — a step's intent is on disk
before the step acts, and a journal that cannot be written stops the run before any change."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from console.config.model import Config, Host
from console.engine.plan import Facts, Plan, RunContext, Step
from console.engine.runner import Runner
from console.events import Event
from console.journal import Journal, RunRecorder
from console.journal import writer as writer_module
from console.transport.pool import TransportPool
from tests.test_journal import staging_env


def on_disk(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def slow_fsync(monkeypatch: Any, seconds: float) -> list[float]:
    """Every fsync takes ``seconds``: a busy disk. Returns when each one ended."""
    real = writer_module.os.fsync
    ended: list[float] = []

    def fsync(fd: int) -> None:
        time.sleep(seconds)
        real(fd)
        ended.append(time.monotonic())

    monkeypatch.setattr(writer_module.os, "fsync", fsync)
    return ended


async def test_records_emitted_from_many_tasks_are_written_in_emission_order(tmp_path: Path, monkeypatch) -> None:
    slow_fsync(monkeypatch, 0.01)
    journal = Journal(tmp_path / "journal.jsonl")
    errors: list[str] = []
    record = RunRecorder(journal, "staging", errors.append)
    emitted: list[str] = []

    async def host(name: str) -> None:
        for i in range(20):
            emitted.append(f"{name}-{i}")
            record(Event("note", "run-1", host=name, message=f"{name}-{i}"))
            if i % 5 == 4:
                await record.durable()
            await asyncio.sleep(0)

    await asyncio.gather(*(host(f"web{n}") for n in range(5)))
    await record.durable()
    written = on_disk(journal.path)
    assert [r["data"]["message"] for r in written] == emitted
    assert [r["seq"] for r in written] == list(range(1, 101))
    assert journal.verify() == [] and errors == []


async def test_durable_returns_once_every_record_is_on_disk(tmp_path: Path, monkeypatch) -> None:
    slow_fsync(monkeypatch, 0.05)
    journal = Journal(tmp_path / "journal.jsonl")
    record = RunRecorder(journal, "staging", lambda e: None)
    for i in range(10):
        record(Event("note", "run-1", message=str(i)))
    await record.durable()
    assert [r["data"]["message"] for r in on_disk(journal.path)] == [str(i) for i in range(10)]


async def test_the_event_loop_goes_on_while_an_append_is_fsynced(tmp_path: Path, monkeypatch) -> None:
    ended = slow_fsync(monkeypatch, 0.5)
    journal = Journal(tmp_path / "journal.jsonl")
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await journal.append_async("note", data={"message": "slow disk"})
    task.cancel()
    assert ended, "the append returned before its fsync ended"
    assert [t for t in ticks if t < ended[0]][1:], "the loop stood still while the journal was fsync'd"
    assert on_disk(journal.path)[0]["data"]["message"] == "slow disk"


class LooksBeforeItLeaps(Step):
    """A changing step whose effect checks that its intent is already on disk."""

    scope = "environment"
    changes = True

    def __init__(self, step_id: str, path: Path, seen: list[str]) -> None:
        self.id, self.title, self.path, self.seen = step_id, f"Change {step_id}", path, seen

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        return self.title

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        return {"before": f"{self.id}-before"}

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        records = on_disk(self.path)
        intents = [r for r in records if r["type"] == "step_intent" and r["data"]["step"] == self.id]
        started = [r for r in records if r["type"] == "step_started" and r["data"]["step"] == self.id]
        self.seen.append(f"{self.id}: intent {'on disk' if intents else 'MISSING'}, start {len(started)}")
        return {"changed": True}


def run_context(tmp_path: Path, journal: Journal, errors: list[str]) -> RunContext:
    env = staging_env()
    config = Config(path=str(tmp_path / "console.toml"), environments={"staging": env})

    def halt(error: str) -> None:
        errors.append(error)
        ctx.halt = error

    record = RunRecorder(journal, "staging", halt)  # wired as the engine wires it
    ctx = RunContext("run-1", config, env, TransportPool(), None, record)  # type: ignore[arg-type]
    ctx.journaled = record.durable
    return ctx


async def test_an_intent_is_on_disk_before_its_step_acts(tmp_path: Path, monkeypatch) -> None:
    slow_fsync(monkeypatch, 0.05)  # were the runner not to wait, the effect would come first
    journal = Journal(tmp_path / "journal.jsonl")
    seen: list[str] = []
    steps = tuple(LooksBeforeItLeaps(s, journal.path, seen) for s in ("edit", "restart", "migrate"))
    plan = Plan("quick", "staging", "Quick", steps, "< 1 min", 60, "None", "Yes")
    errors: list[str] = []
    result = await Runner(run_context(tmp_path, journal, errors), plan).run()
    assert result.outcome == "succeeded" and errors == []
    assert seen == [f"{s}: intent on disk, start 1" for s in ("edit", "restart", "migrate")]
    types = [(r["type"], r["data"].get("step")) for r in on_disk(journal.path)]
    assert types == [
        (t, s) for s in ("edit", "restart", "migrate") for t in ("step_started", "step_intent", "step_finished")
    ]


async def test_a_journal_that_cannot_be_written_stops_the_run_before_any_change(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    journal = Journal(tmp_path / "not-a-dir" / "journal.jsonl")
    seen: list[str] = []
    plan = Plan("quick", "staging", "Quick", (LooksBeforeItLeaps("edit", journal.path, seen),), "", 60, "None", "Yes")
    errors: list[str] = []
    result = await Runner(run_context(tmp_path, journal, errors), plan).run()
    assert seen == []  # the effect never ran
    assert result.outcome != "succeeded"
    assert errors and "cannot write the audit journal" in errors[0]
