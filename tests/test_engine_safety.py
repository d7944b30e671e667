"""What keeps a rollback safe when things go wrong around it: kill -9 mid-run (then resume
or undo), the lock (stale, live, two consoles at once), production approval by a second
person, emergency overrides, secrets kept out of the journal, and shell metacharacters.

The console runs as a real subprocess where its command-line face matters."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from console.config import load_config
from console.engine.session import Engine
from console.journal import Journal, Who
from console.lock import EnvironmentLock, LockHolder
from console.plans import PLANS
from console.simulator.repo import PHASE4_MESSAGE, git
from console.simulator.world import Simulation
from console.transport.pool import TransportPool
from tests.engine_support import (
    MakeSimulation,
    Webhook,
    add_to_config,
    cli,
    cli_start,
    env_file_flags,
    environment,
    journal_of,
    log_flags,
    process_flags,
    records,
    run_id_in,
    wait_for_record,
)
from tests.phase4 import ALL_OFF, ALL_ON

# --- kill -9 in the middle of a run --------------------------------------------------------


def kill_during_effect(sim: Simulation) -> tuple[str, int]:
    """Start `rollback quick` and SIGKILL it while it waits for the new flags to take effect.

    The API is made slow once the restart has begun, so the wait is reliably still going."""
    journal = journal_of(sim)
    proc = cli_start(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    try:
        wait_for_record(
            journal, lambda r: r["type"] == "step_started" and r["data"].get("step") == "restart", proc=proc
        )
        sim.inject("staging", latency_s=30)
        started = wait_for_record(
            journal, lambda r: r["type"] == "step_started" and r["data"].get("step") == "effect", proc=proc
        )
    finally:
        proc.kill()  # SIGKILL: no cleanup, no lock release, no run_finished
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    sim.clear("staging")
    return started["run"], proc.pid


def assert_interrupted(sim: Simulation, run_id: str) -> None:
    journal = journal_of(sim)
    assert [r.run_id for r in journal.interrupted()] == [run_id]
    history = cli(sim.config_path, "history", "--env", "staging")
    assert "interrupted during Wait for the new flags to take effect" in history.stdout


def assert_taken_over(sim: Simulation, run_id: str, pid: int, output: str) -> None:
    """The dead console's lock was taken over by the resume/undo of its own run, and journaled."""
    (taken,) = records(journal_of(sim).run(run_id), "lock_taken_over")
    assert taken["data"]["lock"]["pid"] == pid and taken["data"]["lock"]["run_id"] == run_id
    assert f"pid {pid}" in taken["data"]["why"] and "no longer running" in taken["data"]["why"]
    assert "unlock" not in output
    # The operator is told in one whole line, not a lock log line cut off at the terminal's limit.
    (said,) = [line for line in output.splitlines() if "took over the lock" in line]
    why = taken["data"]["why"]
    assert said == f"rollback-console: warning: took over the lock of 'staging' from run {run_id}: {why}"
    assert "broke the lock" not in output
    assert not (sim.host("staging").home / "rollback-console-staging.lock").exists()  # released at the end


def test_kill_9_mid_run_then_resume_takes_the_dead_lock_over_and_finishes(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    run_id, pid = kill_during_effect(sim)
    assert env_file_flags(host) == ALL_OFF  # the edit and restart happened before the kill
    assert_interrupted(sim, run_id)

    resumed = cli(sim.config_path, "resume", run_id, "--yes")

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "done so far" in resumed.stdout and "edit-env" in resumed.stdout
    assert "Edit the env file" not in resumed.stdout.split("done so far", 1)[1]  # not done again
    assert_taken_over(sim, run_id, pid, resumed.stdout + resumed.stderr)
    run = journal_of(sim).run(run_id)
    assert run.outcome == "succeeded"
    report = cli(sim.config_path, "report", run_id).stdout
    assert "**lock taken over** from a console that is gone" in report
    assert "Edit the env file: about to change (intent journaled first)" in report
    assert process_flags(host) == ALL_OFF and log_flags(host) == ALL_OFF
    assert journal_of(sim).interrupted() == []


def test_kill_9_mid_run_then_undo_takes_the_dead_lock_over_and_puts_every_byte_back(
    make_simulation: MakeSimulation,
) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    original = host.env_file.read_bytes()
    run_id, pid = kill_during_effect(sim)
    assert_interrupted(sim, run_id)

    undone = cli(sim.config_path, "undo", run_id, "--yes")

    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert_taken_over(sim, run_id, pid, undone.stdout + undone.stderr)
    assert journal_of(sim).run(run_id).outcome == "undone"
    assert host.env_file.read_bytes() == original
    assert process_flags(host) == ALL_ON and log_flags(host) == ALL_ON


def test_a_dead_holders_lock_with_its_run_unfinished_needs_resume_undo_or_unlock(
    make_simulation: MakeSimulation,
) -> None:
    """Another rollback does not take over the lock of a run that was cut off: that run's
    changes are still to be finished or undone. It says how; `unlock` still works."""
    sim = make_simulation()
    run_id, pid = kill_during_effect(sim)

    other = cli(sim.config_path, "rollback", "partial-time-weighting", "--env", "staging", "--yes")

    assert other.returncode == 2
    assert f"run {run_id}, pid {pid}" in other.stderr
    assert f"console process (pid {pid})" in other.stderr and "is no longer running" in other.stderr
    assert f"rollback-console resume {run_id}" in other.stderr and f"rollback-console undo {run_id}" in other.stderr
    assert "rollback-console unlock --env staging --reason TEXT" in other.stderr
    assert [r.run_id for r in journal_of(sim).runs()] == [run_id]  # the refusal is no run

    unlock = cli(sim.config_path, "unlock", "--env", "staging", "--reason", "the console was kill -9'd")
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    assert "broke the lock" in unlock.stdout
    (broken,) = records(journal_of(sim).run(run_id), "lock_broken")
    assert broken["data"]["lock"]["pid"] == pid and broken["data"]["reason"] == "the console was kill -9'd"
    assert broken["data"]["forced"] is False


async def test_a_holder_on_another_machine_is_not_taken_over_even_by_its_own_run(
    make_simulation: MakeSimulation,
) -> None:
    """Only a process on this machine can be proved gone: a lock held from another bastion
    (its pid means nothing here) still needs `unlock --reason`, even for resume of its run."""
    sim = make_simulation()
    run_id, _ = kill_during_effect(sim)
    env = environment(sim)
    lock_dir = sim.host("staging").home / "rollback-console-staging.lock"
    owner = json.loads((lock_dir / "owner.json").read_text())
    owner["bastion"] = "bastion-elsewhere"
    (lock_dir / "owner.json").write_text(json.dumps(owner))

    refused = await asyncio.to_thread(cli, sim.config_path, "resume", run_id, "--yes")

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "bastion-elsewhere" in refused.stderr and "is locked" in refused.stderr
    assert records(journal_of(sim).run(run_id), "lock_taken_over") == []
    pool = TransportPool()
    try:
        lock = EnvironmentLock.for_environment(env, await pool.get(env.hosts[0]), LockHolder.current())
        assert (await lock.inspect()) is not None  # still held
    finally:
        await pool.close_all()


async def test_unlock_refuses_a_live_lock_unless_forced(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    env = environment(sim)
    pool = TransportPool()
    try:
        # Held by a console that is alive: this very process.
        lock = EnvironmentLock.for_environment(env, await pool.get(env.hosts[0]), LockHolder.current("r-live"))
        await lock.acquire()
        refused = await asyncio.to_thread(cli, sim.config_path, "unlock", "--env", "staging", "--reason", "stuck?")
        assert refused.returncode == 2
        assert "run r-live" in refused.stderr and "not broken" in refused.stderr and "--force" in refused.stderr
        assert await lock.inspect() is not None

        rollback = await asyncio.to_thread(cli, sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
        assert rollback.returncode == 2 and "is locked" in rollback.stderr and "unlock" not in rollback.stderr

        forced = await asyncio.to_thread(
            cli, sim.config_path, "unlock", "--env", "staging", "--reason", "r-live is a test", "--force"
        )
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert await lock.inspect() is None
        broken = [r for r in journal_of(sim).records() if r["type"] == "lock_broken"]
        assert len(broken) == 1 and broken[0]["data"]["forced"] is True and broken[0]["run"] == "r-live"
        assert await lock.release() is False  # it was broken: not ours any more
    finally:
        await pool.close_all()
    nothing = cli(sim.config_path, "unlock", "--env", "staging", "--reason", "again")
    assert nothing.returncode == 0 and "not locked" in nothing.stdout


def test_two_concurrent_runs_exactly_one_runs_the_other_is_told_who(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    sim.inject("staging", latency_s=2.5)  # the winner's first probe keeps it inside the lock a while
    procs = [cli_start(sim.config_path, "rollback", "quick", "--env", "staging", "--yes") for _ in range(2)]
    deadline = time.monotonic() + 60
    while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    sim.clear("staging")
    outputs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]

    assert sorted(codes) == [0, 2], outputs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    winner_run = run_id_in(outputs[winner][0])
    message = outputs[loser][1]
    assert "environment 'staging' is locked: another rollback holds it" in message
    assert f"@{socket.gethostname()}" in message
    assert f"run {winner_run}, pid {procs[winner].pid}" in message and " since " in message
    runs = journal_of(sim).runs()
    assert [r.run_id for r in runs] == [winner_run] and runs[0].outcome == "succeeded"
    assert process_flags(sim.host("staging")) == ALL_OFF


# --- production authorization --------------------------------------------------------------


def test_production_waits_for_approval_and_refuses_self_approval(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("production",))
    host = sim.host("production")
    env_bytes = host.env_file.read_bytes()
    me = pwd.getpwuid(os.getuid()).pw_name

    waited = cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", "2")

    assert waited.returncode == 2, waited.stdout + waited.stderr  # a refusal before anything changed
    assert "no approval within 2s: nothing was changed" in waited.stderr
    assert "resume" not in waited.stderr and "undo" not in waited.stderr
    run_id = run_id_in(waited.stdout)
    assert host.env_file.read_bytes() == env_bytes and process_flags(host) == ALL_ON
    assert journal_of(sim).run(run_id).outcome == "pending"
    assert "awaiting approval" in cli(sim.config_path, "history").stdout

    self_approval = cli(sim.config_path, "approve", run_id)
    assert self_approval.returncode == 2
    assert f"you ({me}) cannot approve your own production rollback" in self_approval.stderr
    assert journal_of(sim).run(run_id).approved_by() is None

    named_self = cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--approved-by", me)
    assert named_self.returncode == 2 and f"--approved-by {me} is you" in named_self.stderr
    assert host.env_file.read_bytes() == env_bytes


# `rollback-console approve` in a process of another OS user. The interpreter may live where
# only root can read it (e.g. pyenv under /root), so the process starts as root, loads the
# console, then drops to the other user for good before the command runs.
APPROVE_AS = """
import os, pwd, sys
from console.cli import build_parser, main
import asyncio, httpx
from console.config import load_config
from console.engine.session import Engine
from console.plans import PLANS
build_parser()
asyncio.run(Engine(load_config(sys.argv[3]), plans=PLANS).close())  # loads everything `approve` will need
user = pwd.getpwnam(sys.argv[1])
os.setgroups([])
os.setgid(user.pw_gid)
os.setuid(user.pw_uid)
assert os.getuid() == user.pw_uid and os.geteuid() == user.pw_uid
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
def second_operator() -> Iterator[tuple[str, str] | None]:
    """A throwaway OS user and group (as root, as in CI): (user, group). None when not root."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        yield None
        return
    name = f"rcappr{secrets.token_hex(3)}"
    subprocess.run(["groupadd", name], check=True, capture_output=True)
    try:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--gid", name, name],
            check=True,
            capture_output=True,
        )
        try:
            yield name, name
        finally:
            subprocess.run(["userdel", name], capture_output=True)
    finally:
        subprocess.run(["groupdel", name], capture_output=True)


def test_another_person_approves_and_the_waiting_run_goes_ahead(
    make_simulation: MakeSimulation, second_operator: tuple[str, str] | None
) -> None:
    sim = make_simulation(environments=("production",))
    host = sim.host("production")
    # Operators share the journal through a group-writable directory, as on a bastion.
    shared = Path(tempfile.mkdtemp(prefix="rc-shared-"))
    try:
        config_path = shared / "console.toml"
        journal_path = shared / "journal.jsonl"
        config_path.write_text(
            sim.config_path.read_text().replace(str(sim.directory / "journal.jsonl"), str(journal_path))
        )
        if second_operator is not None:
            gid = grp.getgrnam(second_operator[1]).gr_gid
            os.chown(shared, -1, gid)
            os.chmod(shared, 0o2770)
            os.chown(config_path, -1, gid)
            os.chmod(config_path, 0o640)
        waiting = cli_start(config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", "60")
        try:
            requested = wait_for_record(Journal(journal_path), lambda r: r["type"] == "run_requested", proc=waiting)
            run_id = requested["run"]
            if second_operator is not None:
                # `approve` as another OS user, in its own process.
                approver = second_operator[0]
                approve = subprocess.run(
                    [sys.executable, "-c", APPROVE_AS, approver, "--config", str(config_path), "approve", run_id],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    cwd="/",
                )
                assert approve.returncode == 0, approve.stdout + approve.stderr
                assert f"approved by {approver}" in approve.stdout
            else:  # not root: a second person through the engine, as the console's approve screen does
                approver = "second-approver"
                engine = Engine(load_config(config_path), who=Who(approver, None, socket.gethostname(), 1), plans=PLANS)
                try:
                    engine.approve(run_id)
                finally:
                    asyncio.run(engine.close())
            out, err = waiting.communicate(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                waiting.kill()
        assert waiting.returncode == 0, out + err
        assert f"approved by {approver}" in out
        run = Journal(journal_path).run(run_id)
        assert run.outcome == "succeeded"
        assert run.authorization["mode"] == "approved" and run.authorization["approver"] == approver
        (approved,) = records(run, "run_approved")
        assert approved["who"]["user"] == approver != run.operator
        assert process_flags(host) == ALL_OFF
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_emergency_p0_runs_at_once_notifies_and_leaves_a_post_hoc_review(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("production",))
    add_to_config(sim, '[notifications]\nwebhook = { env = "RC_TEST_WEBHOOK" }\ntimeout_s = 2.0')
    with Webhook() as hook:
        env = {"RC_TEST_WEBHOOK": hook.url}
        no_reason = cli(
            sim.config_path, "rollback", "quick", "--env", "production", "--emergency", "P0", "--yes", env=env
        )
        assert no_reason.returncode == 2 and "needs a typed reason" in no_reason.stderr

        reason = "p95 over 5 s since 14:02, users see timeouts"
        result = cli(
            sim.config_path, "rollback", "quick", "--env", "production", "--emergency", "P0", "--reason", reason,
            "--yes", env=env,
        )  # fmt: skip

        assert result.returncode == 0, result.stdout + result.stderr
        assert process_flags(sim.host("production")) == ALL_OFF
        assert "Emergency override" in hook.texts()[0] and reason in hook.texts()[0]
    run_id = run_id_in(result.stdout)
    checklist = cli(sim.config_path, "checklist", run_id)
    assert checklist.returncode == 1  # not complete: the review is still to do
    assert re.search(r"\[ \] post_hoc_review\s+Post-hoc review of the P0 emergency override", checklist.stdout)
    assert journal_of(sim).run(run_id).authorization["post_hoc_review"] is True


# --- secrets and shell metacharacters ------------------------------------------------------------


@pytest.mark.postgres
def test_no_secret_reaches_the_journal(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    host = sim.host("staging")
    dsn = sim.dsn("staging") or ""
    text = host.env_file.read_text()
    jwt = re.search(r"^JWT_SECRET_KEY=(.+)$", text, re.M).group(1)  # type: ignore[union-attr]
    auth_hash = re.search(r"^AUTH_PASSWORD_SHA256=(.+)$", text, re.M).group(1)  # type: ignore[union-attr]
    # Move the secret lines right next to the flag lines, so every diff shows them as context.
    secret_lines = [line for line in text.splitlines() if line.startswith(("JWT_SECRET_KEY=", "DATABASE_URL="))]
    text = "\n".join(line for line in text.splitlines() if line not in secret_lines)
    text = text.replace("ENABLE_TIME_WEIGHTING=true", "\n".join(["ENABLE_TIME_WEIGHTING=true", *secret_lines]))
    host.env_file.write_text(text)
    add_to_config(sim, '[notifications]\nwebhook = { env = "RC_TEST_WEBHOOK" }\ntimeout_s = 1.0')
    with Webhook(status=404) as hook:  # a failing webhook: its error must not echo the URL
        env = {"RC_TEST_WEBHOOK": hook.url}
        scenario_b = cli(sim.config_path, "rollback", "partial-content-type", "--env", "staging", "--yes", env=env)
        assert scenario_b.returncode == 1  # a failed validation: its errors and outputs are journaled too
        assert cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", env=env).returncode == 0
        sim.inject("staging", rollback_script_fails=True)
        failed_db = cli(sim.config_path, "rollback", "database", "--env", "staging", "--yes", env=env)
        assert failed_db.returncode == 1 and "the rollback script failed" in failed_db.stdout
        report = cli(sim.config_path, "report", run_id_in(failed_db.stdout), env=env)
        assert report.returncode == 0

    journal = (sim.directory / "journal.jsonl").read_bytes()
    assert b"JWT_SECRET_KEY=" in journal and b"DATABASE_URL=" in journal  # the lines were there, as context
    assert b"notify_failed" in journal
    for secret in (
        sim.password("staging"),
        dsn,
        urlsplit(dsn).password or "?",
        jwt,
        auth_hash,
        hook.url,
        "XXXXsecrettoken",
    ):
        assert secret.encode() not in journal, f"secret {secret[:4]}… leaked into the journal"
        assert secret not in report.stdout


def test_shell_metacharacters_in_paths_are_quoted(tmp_path: Path) -> None:
    """A home with spaces, quotes, $, ;, backticks, & and |: the console's own commands
    (lock, log offsets, git, cd) quote every value, the configured commands take it as
    {home:q}; no injected command runs."""
    weird = tmp_path / """odd ' "dq" $(touch pwned1) ;touch pwned2; `touch pwned3` & $ |x"""
    sim = Simulation(weird, environments=("staging",), database=False).start()
    try:
        assert "{home:q}" in sim.config_path.read_text()
        host = sim.host("staging")
        cwd = tmp_path / "cwd"
        cwd.mkdir()

        quick = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", cwd=cwd)
        assert quick.returncode == 0, quick.stdout + quick.stderr
        code = cli(sim.config_path, "rollback", "code", "--env", "staging", "--yes", cwd=cwd)
        assert code.returncode == 0, code.stdout + code.stderr

        assert process_flags(host) == ALL_OFF and log_flags(host) == ALL_OFF
        assert git(host.repo, "log", "-1", "--format=%s").strip() == f'Revert "{PHASE4_MESSAGE}"'
        assert not (host.home / "rollback-console-staging.lock").exists()  # taken and released there
        planted = [p for p in [*tmp_path.rglob("pwned*"), *Path("/").glob("pwned*")] if p.exists()]
        assert planted == []
    finally:
        sim.stop()


def test_a_run_killed_before_it_started_leaves_a_lock_the_next_rollback_takes_over(
    make_simulation: MakeSimulation,
) -> None:
    """Killed after taking the lock, before its run_started: the journal shows its lock
    intent and nothing after, so it changed nothing; the next rollback takes the lock over."""
    sim = make_simulation()
    killed = cli(
        sim.config_path, "rollback", "quick", "--env", "staging", "--yes",
        env={"ROLLBACK_CONSOLE_FAILPOINTS": "lock/after-effect=kill"},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    assert (sim.host("staging").home / "rollback-console-staging.lock").exists()
    assert journal_of(sim).runs() == []  # no run: it never started

    again = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")

    assert again.returncode == 0, again.stdout + again.stderr
    (run,) = journal_of(sim).runs()
    (taken,) = records(run, "lock_taken_over")
    assert "never started" in taken["data"]["why"]


async def test_a_dead_holder_whose_run_this_journal_does_not_know_still_needs_unlock(
    make_simulation: MakeSimulation,
) -> None:
    sim = make_simulation()
    env = environment(sim)
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()  # a process of this machine that is gone: its pid proves it
    holder = LockHolder("bob", None, socket.gethostname(), gone.pid, "r-20250101-000000-beef")
    pool = TransportPool()
    try:
        await EnvironmentLock.for_environment(env, await pool.get(env.hosts[0]), holder).acquire()
    finally:
        await pool.close_all()

    refused = await asyncio.to_thread(cli, sim.config_path, "rollback", "quick", "--env", "staging", "--yes")

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "is no longer running" in refused.stderr and "unlock --env staging --reason TEXT" in refused.stderr
    assert process_flags(sim.host("staging")) == ALL_ON
