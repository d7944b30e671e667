"""What the engine says holds: refusals knowable before anything changes are refused, not
run (exit 2, no run in the history, no resume/undo advice); a plan with nothing to change
says so and restarts nothing; what the operator confirmed is what runs — a change in
between (the env file, a new dependent index) stops the run before any change, in the
CLI and in the console's wizard; a restore gives back the flag lines' own bytes."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from textual.widgets import RichLog

from console.config import load_config
from console.engine.session import Engine, RunRefused, RunRequest
from console.failpoints import ENV as FAILPOINTS
from console.plans import PLANS
from tests.engine_support import (
    RUN_ID,
    MakeSimulation,
    cli,
    cli_start,
    db_state,
    env_file_flags,
    journal_of,
    process_flags,
    records,
    run_engine,
    run_id_in,
    set_flags_and_restart,
    wait_for_record,
)
from tests.phase4 import ALL_OFF, ALL_ON, flags
from tests.test_tui_wizard import app_for, open_wizard, preview, until

ODD = (
    b"# flags written by hand, as they are on some hosts\r\n"
    b"export ENABLE_ADVANCED_RECOMMENDATIONS=True   # on since 7.4\r\n"
    b"ENABLE_TIME_WEIGHTING='TRUE'\r\n"
)


def assert_not_a_run(result, sim, *words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert "resume" not in result.stderr and "undo" not in result.stderr
    assert journal_of(sim).runs() == []
    assert RUN_ID.findall(cli(sim.config_path, "history").stdout) == []


# --- preflight refusals are not runs ----------------------------------------------------------


@pytest.mark.postgres
async def test_database_rollback_with_the_flags_on_is_refused_before_a_run(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    before = await db_state(sim.dsn("staging") or "")
    env_bytes = sim.host("staging").env_file.read_bytes()

    # The plan says so too: it printed the SQL and exited 0, and the refusal came only at run.
    plan = await asyncio.to_thread(cli, sim.config_path, "plan", "database", "--env", "staging")
    assert plan.returncode == 2 and "DROP COLUMN IF EXISTS has_video" in plan.stdout, plan.stdout + plan.stderr
    assert "`rollback database` would be refused now: the flags must be off before the columns go" in plan.stderr
    result = await asyncio.to_thread(cli, sim.config_path, "rollback", "database", "--env", "staging", "--yes")

    assert_not_a_run(
        result, sim, "refused: the flags must be off before the columns go", "Run the quick rollback first"
    )
    assert await db_state(sim.dsn("staging") or "") == before
    assert sim.host("staging").env_file.read_bytes() == env_bytes
    assert not [r for r in journal_of(sim).records() if r["type"] == "run_started"]


def test_quick_rollback_with_nothing_to_change_says_so_and_restarts_nothing(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    set_flags_and_restart(sim, host, ALL_OFF)
    pid = host.pid()
    env_bytes = host.env_file.read_bytes()

    plan = cli(sim.config_path, "plan", "quick", "--env", "staging")
    result = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")

    assert "NOTHING TO CHANGE" in plan.stdout and "already" in plan.stdout
    assert "NOTHING TO CHANGE" in result.stdout
    assert_not_a_run(result, sim, "refused: nothing to change", "was not restarted")
    assert host.pid() == pid and host.env_file.read_bytes() == env_bytes


def test_a_recommended_rollback_already_in_effect_says_so_and_says_escalate(make_simulation: MakeSimulation) -> None:
    """Errors go on with every flag already off: the matrix row still says quick, but a quick
    rollback would change nothing; "recommended: Quick rollback" alone sent the operator to
    run it again. Said once the env file and the process both show it, not before."""
    import json

    sim = make_simulation(environments=("staging",))
    host = sim.host("staging")
    # Outside a run, `check`'s flag validation passes on agreement with the env file, and says
    # so: "log: Advanced: True …" alone read as if on were what a rollback wanted.
    checked = cli(sim.config_path, "check", "staging")
    assert "Feature flag status    log: Advanced: True" in checked.stdout, checked.stdout
    assert "(as the env file says)" in checked.stdout
    sim.inject("staging", error_rate=1.0)
    cli(sim.config_path, "status", "staging")  # its best-times requests fail: errors in the log
    on = json.loads(cli(sim.config_path, "status", "staging", "--json").stdout)
    (env,) = on["environments"]
    assert env["recommendation"]["action"] == "quick" and env["recommendation"]["in_effect"] is False

    host.env_file.write_bytes(host.env_file.read_bytes().replace(b"=true", b"=false"))
    stale = json.loads(cli(sim.config_path, "status", "staging", "--json").stdout)
    assert stale["environments"][0]["recommendation"]["in_effect"] is False, "the process still has them on"

    set_flags_and_restart(sim, host, ALL_OFF)
    cli(sim.config_path, "status", "staging")
    status = cli(sim.config_path, "status", "staging")
    data = json.loads(cli(sim.config_path, "status", "staging", "--json").stdout)
    rec = data["environments"][0]["recommendation"]
    assert rec["action"] == "quick" and rec["in_effect"] is True, rec
    assert "already in effect on every host (the flags are as it sets them), yet the symptom is there: escalate" in (
        status.stdout
    )


def test_status_says_what_the_journal_says_the_rollback_in_effect_and_open_requests(
    make_simulation: MakeSimulation,
) -> None:
    """`status` over SSH was silent on what the dashboard's panels say: a rollback in effect
    (and how to put it back) and a production request waiting for its approver."""
    import json

    sim = make_simulation(environments=("staging", "production"))
    quiet = cli(sim.config_path, "status")
    assert "journal" not in quiet.stdout, "nothing recorded: nothing claimed"
    done = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "drill day")
    run_id = run_id_in(done.stdout)
    asked = cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", "0")
    request = run_id_in(asked.stdout)

    text = cli(sim.config_path, "status").stdout
    staging, production = text.split("\n\nproduction (production)")
    assert f"ROLLED BACK by run {run_id}" in staging and "Quick rollback" in staging
    assert f"rollback-console restore --env staging --run {run_id}" in staging
    assert "no longer has the flags" not in staging
    assert f"APPROVAL PENDING: run {request}" in production and f"rollback-console approve {request}" in production
    assert "ROLLED BACK" not in production and "APPROVAL" not in staging
    data = json.loads(cli(sim.config_path, "status", "--json").stdout)
    journal = {e["environment"]: e["journal"] for e in data["environments"]}
    assert journal["staging"]["rolled_back"]["run"] == run_id and journal["staging"]["requests"] == []
    assert [r["run"] for r in journal["production"]["requests"]] == [request]

    # The flags put back on by hand (nano and a restart, as the runbook once said): the journal's
    # last rollback is no longer what the hosts show, and status says so.
    host = sim.host("staging")
    before = host.env_file.read_bytes()
    set_flags_and_restart(sim, host, ALL_ON)
    by_hand = cli(sim.config_path, "status", "staging").stdout
    assert f"NO LONGER IN EFFECT: rolled back by run {run_id}" in by_hand and "ROLLED BACK" not in by_hand
    # All on again is what the file had before the run: a restore would change no flag.
    assert "the env file on staging-1 has the flags it had before the run again" in by_hand
    assert "a restore would change no flag" in by_hand
    data = json.loads(cli(sim.config_path, "status", "staging", "--json").stdout)
    assert data["environments"][0]["journal"]["rolled_back"]["changed_since_on"] == ["staging-1"]
    assert data["environments"][0]["journal"]["rolled_back"]["as_before_on"] == ["staging-1"]
    # Only time-weighting on: neither what the run left nor what was there before it.
    set_flags_and_restart(sim, host, flags(advanced=False, time_weighting=True, content_type=False))
    partly = cli(sim.config_path, "status", "staging").stdout
    assert "the env file on staging-1 no longer has the flags the run left" in partly
    assert "a restore would change no flag" not in partly
    host.env_file.write_bytes(before)
    sim.run("staging", "restart_command")

    restored = cli(sim.config_path, "restore", "--env", "staging", "--yes", "--reason", "over")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "ROLLED BACK" not in cli(sim.config_path, "status", "staging").stdout, "put back: no longer in effect"

    # What status reads from the run index is what the dashboard reads from every record.
    from console.engine.standing import standing, standings_from_index
    from console.plans import PLANS

    config = load_config(sim.config_path)
    journal = journal_of(sim)
    for when in ("after the restore", "after one more rollback"):
        fast = standings_from_index(journal, config, PLANS, ["staging", "production"])
        for env in ("staging", "production"):
            whole = standing(config, PLANS, journal.runs(), env)
            assert (fast[env].rolled_back and fast[env].rolled_back.run_id) == (
                whole.rolled_back and whole.rolled_back.run_id
            ), (when, env)
            assert [q.run_id for q in fast[env].requests] == [q.run_id for q in whole.requests], (when, env)
        cli(sim.config_path, "rollback", "partial-time-weighting", "--env", "staging", "--yes")
    assert standings_from_index(journal_of(sim), config, PLANS, ["staging"])["staging"].rolled_back is not None

    # A journal that cannot be read is said to be so; the probes' answer stands.
    path = journal_of(sim).path
    path.rename(path.with_name("kept.jsonl"))
    path.mkdir()  # a directory where the journal should be
    broken = cli(sim.config_path, "status", "staging")
    assert "journal      cannot read it:" in broken.stdout and "recommended:" in broken.stdout


def test_a_file_already_off_but_a_process_still_on_is_not_nothing_to_change(make_simulation: MakeSimulation) -> None:
    """The stale environment: the env file says off, the running process still has them on.
    Nothing to write, but the restart is what the rollback is for."""
    sim = make_simulation()
    host = sim.host("staging")
    host.env_file.write_bytes(host.env_file.read_bytes().replace(b"=true", b"=false"))
    pid = host.pid()

    result = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "the restart below loads the file" in result.stdout
    assert host.pid() != pid and process_flags(host) == ALL_OFF


def test_a_fleet_restarts_only_the_hosts_a_rollback_changes(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(hosts=3)
    hosts = sim.hosts("staging")
    set_flags_and_restart(sim, hosts[1], ALL_OFF)
    pids = {h.name: h.pid() for h in hosts}

    result = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")

    assert result.returncode == 0, result.stdout + result.stderr
    assert hosts[1].pid() == pids[hosts[1].name]  # already off there: not restarted
    assert all(h.pid() != pids[h.name] for h in (hosts[0], hosts[2]))
    assert all(process_flags(h) == ALL_OFF for h in hosts)
    run = journal_of(sim).run(run_id_in(result.stdout))
    (skipped,) = [r for r in records(run, "step_finished", "restart") if r["data"]["host"] == hosts[1].name]
    assert "nothing changed on this host" in skipped["data"]["message"]


def test_validation_checks_what_the_rollback_set_and_that_the_env_file_still_says_it(
    make_simulation: MakeSimulation,
) -> None:
    """The validation compares the log and the process with the flags this run wrote, not
    with whatever the env file says by then: a file put back behind the rollback's back
    (config management, a colleague) failed as "expected Advanced: True …", as if on were
    what the rollback wanted, and a run with nothing changed behind it passed "(as the env
    file says)"."""
    sim = make_simulation()
    host = sim.host("staging")
    original = host.env_file.read_bytes()

    passed = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Feature flag status: log: Advanced: False" in passed.stdout, passed.stdout
    assert "(as the env file says)" not in passed.stdout
    set_flags_and_restart(sim, host, ALL_ON)

    journal = journal_of(sim)
    proc = cli_start(
        sim.config_path,
        "rollback",
        "quick",
        "--env",
        "staging",
        "--yes",
        env={FAILPOINTS: "effect/after-effect=sleep(2)"},
    )
    # The restart is done (the new process read the file): put the file back before the validation.
    first = run_id_in(passed.stdout)
    wait_for_record(
        journal,
        lambda r: r["type"] == "step_started" and r["data"].get("step") == "effect" and r["run"] != first,
        proc=proc,
    )
    host.env_file.write_bytes(original)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode != 0, out + err
    assert process_flags(host) == ALL_OFF  # the process is what the rollback set …
    expected = "expected Advanced: False, Time-weighting: False, Content-type: False, but the env file now says"
    assert expected in out + err, out + err  # … and the file no longer says so
    assert "Advanced: True, Time-weighting: True, Content-type: True (changed since the edit)" in out + err
    assert "log says" not in out + err and "process has" not in out + err


async def test_nothing_to_change_found_under_the_lock_is_refused_and_journaled_but_not_a_run(
    make_simulation: MakeSimulation,
) -> None:
    """The CLI refuses before confirming; the engine checks again under the lock (the wizard
    and a race reach that): a refusal record, no run, no restart."""
    sim = make_simulation()
    host = sim.host("staging")
    set_flags_and_restart(sim, host, ALL_OFF)
    pid = host.pid()

    with pytest.raises(RunRefused, match="nothing to change"):
        await run_engine(sim.config_path, "quick")

    assert host.pid() == pid
    assert journal_of(sim).runs() == [] and journal_of(sim).interrupted() == []
    refused = [r for r in journal_of(sim).records() if r["type"] == "run_refused"]
    assert len(refused) == 1 and "nothing to change" in refused[0]["data"]["why"]


# --- what was confirmed is what runs ------------------------------------------------------------


async def test_an_env_file_changed_after_the_preview_stops_the_run_before_any_change(
    make_simulation: MakeSimulation,
) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    engine = Engine(load_config(sim.config_path), plans=PLANS)
    try:
        request = RunRequest("staging", "quick")
        run = (await engine.prepare(request)).confirm()
        # Someone edits the file between the confirmation and the run.
        changed = host.env_file.read_bytes().replace(b"ENABLE_TIME_WEIGHTING=true", b"ENABLE_TIME_WEIGHTING=yes")
        host.env_file.write_bytes(changed)
        pid = host.pid()

        with pytest.raises(RunRefused) as refused:
            await engine.execute(run)

        text = str(refused.value)
        assert "differs from the preview you confirmed" in text and "nothing was changed" in text
        assert "ENABLE_TIME_WEIGHTING=yes" in text  # the difference is shown
        assert host.env_file.read_bytes() == changed and host.pid() == pid
        assert journal_of(sim).runs() == []

        # Previewed and confirmed again, it runs.
        again = (await engine.prepare(request)).confirm()
        assert again.confirmed is not None and run.confirmed is not None
        assert again.confirmed.digest != run.confirmed.digest
        outcome = await engine.execute(again)
        assert outcome.result.outcome == "succeeded", outcome.result.message
        summary = journal_of(sim).run(outcome.run_id)
        started = records(summary, "run_started")[0]["data"]
        assert summary.plan["preview_digest"] == again.confirmed.digest == started["confirmed_digest"]
    finally:
        await engine.close()


@pytest.mark.postgres
async def test_a_new_dependent_index_after_the_preview_stops_the_database_rollback(
    make_simulation: MakeSimulation,
) -> None:
    sim = make_simulation(database=True)
    dsn = sim.dsn("staging") or ""
    assert (await run_engine(sim.config_path, "quick")).result.outcome == "succeeded"
    engine = Engine(load_config(sim.config_path), plans=PLANS)
    try:
        run = (await engine.prepare(RunRequest("staging", "database"))).confirm()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE INDEX idx_posts_video_views ON posts (has_video, views)")
        finally:
            await conn.close()
        before = await db_state(dsn)

        with pytest.raises(RunRefused) as refused:
            await engine.execute(run)

        assert "idx_posts_video_views" in str(refused.value)
        assert await db_state(dsn) == before
    finally:
        await engine.close()


async def test_the_wizard_refuses_to_run_what_changed_after_its_confirmation(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("staging",))
    host = sim.host("staging")
    app = app_for(sim)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_wizard(app, pilot, "staging")
        await preview(app, pilot)
        await pilot.press("ctrl+n")  # authorize: staging is self-service
        changed = host.env_file.read_bytes() + b"ENABLE_TIME_WEIGHTING=false\n"  # behind the wizard's back
        host.env_file.write_bytes(changed)
        await pilot.press("ctrl+n")  # the confirmation shows what was previewed
        await pilot.pause()
        await pilot.press("y")

        def refused() -> bool:
            logs = app.screen.query(RichLog)
            return bool(logs) and any("differs from the preview you confirmed" in str(s.text) for s in logs[0].lines)

        await until(refused, pilot, timeout=60)
        assert host.env_file.read_bytes() == changed
        assert journal_of(sim).runs() == []


# --- exact restore through the whole product -------------------------------------------------


def test_rollback_then_restore_gives_back_the_flag_lines_own_bytes(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    text = host.env_file.read_bytes()
    for line in (
        b"ENABLE_ADVANCED_RECOMMENDATIONS=true\n",
        b"ENABLE_TIME_WEIGHTING=true\n",
        b"ENABLE_CONTENT_TYPE_ANALYSIS=true\n",
    ):
        text = text.replace(line, b"")
    original = text.replace(b"\n", b"\r\n") + ODD  # CRLF, `export`, `True`, quotes, a comment; one flag missing
    host.env_file.write_bytes(original)
    sim.run("staging", "restart_command")
    assert process_flags(host) == ALL_ON

    rolled = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert env_file_flags(host) == ALL_OFF and process_flags(host) == ALL_OFF
    assert b"export ENABLE_ADVANCED_RECOMMENDATIONS=false   # on since 7.4\r\n" in host.env_file.read_bytes()

    restored = cli(sim.config_path, "restore", "--env", "staging", "--yes")

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert host.env_file.read_bytes() == original  # `True`, `'TRUE'`, CRLF; the appended flag gone again
    assert "byte for byte as before" in restored.stdout
    assert process_flags(host) == ALL_ON


# --- journals written before intents existed ---------------------------------------------------


def test_a_journal_from_before_intents_still_reads_and_restores(make_simulation: MakeSimulation) -> None:
    """A quick rollback as the engine journaled it before write-ahead intents and splices:
    the flags' values only. History and the report read it; restore puts the flags back
    (as true/false, the only thing that journal kept) and says it could not be exact."""
    sim = make_simulation()
    host = sim.host("staging")
    set_flags_and_restart(sim, host, ALL_OFF)
    journal = journal_of(sim)
    run = "r-20250101-000000-0ld0"
    on = {"advanced": True, "time_weighting": True, "content_type": True}
    off = dict.fromkeys(on, False)
    journal.append("run_started", run=run, env="staging", data={"action": "quick", "reason": "old", "plan": {}})
    journal.append("step_started", run=run, env="staging", data={"step": "edit-env", "host": host.name})
    facts = {"path": str(host.env_file), "before": on, "after": off, "changed": True, "backup": None, "problems": []}
    journal.append(
        "step_finished", run=run, env="staging", data={"step": "edit-env", "host": host.name, "facts": facts}
    )
    journal.append("run_finished", run=run, env="staging", data={"outcome": "succeeded", "duration_s": 1.0})

    history = cli(sim.config_path, "history")
    report = cli(sim.config_path, "report", run)
    restored = cli(sim.config_path, "restore", "--env", "staging", "--yes")

    assert run in history.stdout and report.returncode == 0
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "only the flags' values were journaled" in restored.stdout
    assert env_file_flags(host) == ALL_ON and process_flags(host) == ALL_ON


def test_an_older_database_run_keeps_its_copy_under_its_own_step_and_is_still_restorable() -> None:
    """Before the copy and the drop became one step, the copy's path was journaled by its
    own step ("db-keep"): the restore still finds it."""
    from pathlib import Path

    from console.plans import PLANS
    from console.plans.database import database_plan
    from console.plans.kept_copy import ReapplyMigration
    from console.profile import profile_of

    sample = Path(__file__).resolve().parent.parent / "sample_configs" / "analyticbot.toml"
    env = load_config(sample).environment("staging")
    plan = database_plan(env, {}, profile_of(env).action("database"))
    old = {"db-keep": {"*": {"path": "/var/lib/rollback-console/kept/r-1-posts.json"}}, "db-rollback": {"*": {}}}

    (step,) = PLANS.undo_steps(plan, old)

    assert isinstance(step, ReapplyMigration) and step.path == "/var/lib/rollback-console/kept/r-1-posts.json"


def test_restore_of_a_run_killed_before_its_write_finds_nothing_to_change(make_simulation: MakeSimulation) -> None:
    """Killed after the edit's intent, before the write: the file is as it was. A restore of
    that run changes nothing and claims no conflict — it says there is nothing to change."""
    sim = make_simulation()
    host = sim.host("staging")
    original = host.env_file.read_bytes()
    killed = cli(
        sim.config_path, "rollback", "quick", "--env", "staging", "--yes",
        env={"ROLLBACK_CONSOLE_FAILPOINTS": "edit-env/after-intent=kill"},
    )  # fmt: skip
    assert killed.returncode == -9
    run_id = journal_of(sim).interrupted()[0].run_id

    restore = cli(sim.config_path, "restore", "--env", "staging", "--run", run_id, "--yes")
    undo = cli(sim.config_path, "undo", run_id, "--yes")

    assert restore.returncode == 2 and "nothing to change" in restore.stderr, restore.stdout + restore.stderr
    assert "not exact" not in restore.stdout
    assert undo.returncode == 0 and "nothing to undo: no change was made" in undo.stdout, undo.stdout + undo.stderr
    assert host.env_file.read_bytes() == original and process_flags(host) == ALL_ON


def test_in_the_env_file_already_names_the_hosts_whose_api_lacks_the_flags(make_simulation: MakeSimulation) -> None:
    """Every env file has the quick rollback's flags; one host restarted with them, one still
    runs without them, one is stopped. The status said "the running API does not have them",
    as if no host did, and did not say which hosts were left or why."""
    import io
    import json

    from console.envfile import parse_env
    from console.simulator import ctl
    from tests.phase4 import RULES

    sim = make_simulation(hosts=3)
    hosts = sim.hosts("staging")
    sim.inject("staging", latency_s=7)  # not caused by a flag: the quick rollback stays recommended
    for h in hosts:
        env = parse_env(h.env_file.read_bytes(), str(h.env_file))
        h.env_file.write_bytes(env.encoded(env.with_flags(ALL_OFF.by_env(), RULES)))
    restarted = sim.run("staging", "restart_command", hosts[1].index)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    ctl.stop(hosts[2].home, out=io.StringIO())

    status = cli(sim.config_path, "status", "staging", "--json")
    rec = json.loads(status.stdout)["environments"][0]["recommendation"]

    assert rec["action"] == "quick" and rec["in_files"] and not rec["in_effect"], rec
    assert rec["not_taken"] == [
        {"host": hosts[0].name, "why": "running without them"},
        {"host": hosts[2].name, "why": "not running"},
    ], rec["not_taken"]
    said = cli(sim.config_path, "status", "staging").stdout
    expected = (
        f"its flags are in every env file already, but on 2 of 3 hosts the API does not have them "
        f"({hosts[0].name}: running without them; {hosts[2].name}: not running)"
    )
    assert expected in " ".join(said.split()), said
