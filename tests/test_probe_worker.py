"""The probe worker: the dashboard's probe loops in their own process, on the real simulator."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

from console.config import load_config
from console.journal import pid_alive
from console.probes.worker import FrameReader, ProbeWorker
from tests.phase4 import ALL_ON
from tests.test_tui_wizard import OPERATOR, until


def collect(worker: ProbeWorker, done: Callable[[list[tuple]], bool], timeout: float = 30.0) -> list[tuple]:
    reader, got = FrameReader(), []
    deadline = time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"worker sent only {[m[:2] for m in got]}"
        select.select([worker.out], [], [], 0.5)
        data = worker.read()
        if data == b"":
            raise AssertionError("the worker went away")
        if data:
            got.extend(reader.feed(data))  # type: ignore[arg-type]
    return got


def pid_gone(pid: int, timeout: float = 10.0) -> bool:
    """Gone, or exited and waiting for a parent that is not us to reap it."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_spawned_worker_sends_every_environment_and_answers_a_request_with_a_fresh_round(make_simulation) -> None:
    sim = make_simulation(environments=("staging", "production"))
    config = load_config(sim.config_path)
    worker = ProbeWorker.spawn(config)
    try:
        first = collect(worker, lambda got: {m[1] for m in got} >= {"staging", "production"})
        for kind, _name, snapshot, served in first:
            assert kind == "snapshot", snapshot
            assert served == ()
            host = snapshot.hosts[0]
            assert host.health.healthy and host.health.verdict is True
            assert host.flags.process == ALL_ON, "the simulator starts with Phase 4 on"

        sim.inject("production", ready_down=True)
        asked = time.time()
        worker.probe_now("production", 41)
        answer = collect(worker, lambda got: any(41 in m[3] for m in got))
        kind, name, snapshot, served = next(m for m in answer if 41 in m[3])
        assert (kind, name) == ("snapshot", "production")
        assert snapshot.taken_at > asked, "the round answering a request starts after it"
        assert snapshot.hosts[0].health.truth.ok is False, "the fault shows in the answer"
    finally:
        pid = worker.pid
        worker.close()
        worker.close()  # idempotent
    assert pid_gone(pid)


def test_forked_worker_isolates_the_terminal_and_leaves_when_the_console_is_killed(make_simulation) -> None:
    """As the CLI starts it: forked before Textual loads. Its stdio is /dev/null (the
    console owns the terminal), and a console killed with SIGKILL takes it along."""
    sim = make_simulation(environments=("staging",))
    script = textwrap.dedent("""
        import json, os, select, sys
        from console.config import load_config
        from console.probes.worker import FrameReader, ProbeWorker
        worker = ProbeWorker.start(load_config(sys.argv[1]))
        reader, got = FrameReader(), []
        while not got:
            select.select([worker.out], [], [], 1)
            got.extend(reader.feed(worker.read() or b""))
        kind, name, snapshot, _ = got[0]
        fds = [os.readlink(f"/proc/{worker.pid}/fd/{n}") for n in (0, 1, 2)]
        print(json.dumps({"pid": worker.pid, "forked": worker._process is None, "kind": kind,
                          "name": name, "healthy": snapshot.hosts[0].health.healthy, "fds": fds}), flush=True)
        os.kill(os.getpid(), 9)
    """)
    out = subprocess.run(
        [sys.executable, "-c", script, str(sim.config_path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    facts = json.loads(out.stdout)
    assert facts["forked"] and (facts["kind"], facts["name"], facts["healthy"]) == ("snapshot", "staging", True)
    assert facts["fds"] == ["/dev/null"] * 3
    assert pid_gone(facts["pid"]), "the worker outlived a killed console"


async def test_console_restarts_a_worker_that_died_and_keeps_probing(make_simulation) -> None:
    from screens.app import RollbackConsole

    sim = make_simulation(environments=("staging",))
    app = RollbackConsole(load_config(sim.config_path), who=OPERATOR)
    async with app.run_test(size=(80, 24)) as pilot:
        live = app.live["staging"]
        await until(lambda: live.snapshot is not None, pilot)
        first = app._worker
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        await until(lambda: live.probe_error is not None, pilot)
        assert "probe worker stopped" in live.probe_error
        panel = app.screen.query_one("#env-staging")
        await pilot.pause()
        assert "probe worker stopped" in str(panel.border_subtitle), "the panel says its facts are the last known"
        await until(lambda: app._worker is not None and app._worker is not first and live.probe_error is None, pilot)
        rounds = live.rounds
        sim.inject("staging", ready_down=True)
        await app.probe_now("staging")
        assert live.rounds > rounds
        assert live.snapshot.hosts[0].health.truth.ok is False
        worker = app._worker
    assert worker is not None and worker.closed
    assert pid_gone(worker.pid)


async def test_console_that_cannot_start_a_worker_says_so_and_tries_again(make_simulation, monkeypatch) -> None:
    from screens.app import RollbackConsole

    sim = make_simulation(environments=("staging",))
    python = sys.executable
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")  # as when the venv has gone
    app = RollbackConsole(load_config(sim.config_path), who=OPERATOR)
    async with app.run_test(size=(80, 24)) as pilot:
        live = app.live["staging"]
        await until(lambda: live.probe_error is not None, pilot)
        assert live.probe_error.startswith("cannot start the probe worker: ")
        assert "/nonexistent/python3" in live.probe_error
        panel = app.screen.query_one("#env-staging")
        await pilot.pause()
        assert "cannot start the probe worker" in str(panel.query_one(".metrics").render())
        monkeypatch.setattr(sys, "executable", python)
        await until(lambda: live.snapshot is not None and live.probe_error is None, pilot)
        assert live.snapshot.hosts[0].health.healthy
