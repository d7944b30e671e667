"""Service profiles: both ship and load; the Phase 4 profile holds every fact the code has
today; its flag line and predicates read what the simulator really writes and answers;
every bad input is reported as FILE:LINE: key: message."""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import FrozenInstanceError
from itertools import product
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.config import load_config
from console.config.model import Database, Environment, Thresholds
from console.flags import FlagSet
from console.plans import build_plan
from console.profile import DEFAULT_PROFILE, PROFILE_DIR, Profile, load_profile
from console.profile.patterns import fill
from console.profile.vocabulary import FACTS
from console.runbook import checklist, drills, matrix, validation
from console.simulator import analytics
from console.simulator.configfile import LOGIN_EMAIL
from console.simulator.dataset import CHANNEL_ID, POST_COUNT, generate_posts
from console.simulator.settings import FlagSet as SimFlags
from console.simulator.settings import _Json, _Plain
from tests.phase4 import LOG, RULES

# pytest-xdist: the whole file on one worker, so its module-scoped fixture is set up once
pytestmark = pytest.mark.xdist_group("test_profile")

PHASE4 = PROFILE_DIR / "analyticbot-phase4.toml"
SEARCHD = PROFILE_DIR / "searchd-semantic.toml"
# Loaded once for the property tests (no timing: the machine is shared, examples have no deadline).
PHASE4_FLAGS = load_profile(PHASE4).flags
SEARCHD_PROFILE = load_profile(SEARCHD)
DRILLS = PHASE4.parent.parent / "drills"


@pytest.fixture(scope="module")
def phase4() -> Profile:
    return load_profile(PHASE4)


@pytest.fixture(scope="module")
def searchd() -> Profile:
    return load_profile(SEARCHD)


def as_flagset(values: dict[str, bool]) -> SimFlags:
    return SimFlags(values["advanced"], values["time_weighting"], values["content_type"])


# --- both profiles load ------------------------------------------------------------------------


def test_both_profiles_load_into_the_frozen_model(phase4: Profile, searchd: Profile) -> None:
    assert phase4.info.id == "analyticbot-phase4" and searchd.info.id == "searchd-semantic"
    assert phase4.flags.ids == ("advanced", "time_weighting", "content_type") and phase4.flags.master == "advanced"
    assert searchd.flags.ids == ("semantic", "reranker") and searchd.flags.master is None
    assert searchd.probe.login is None and not searchd.probe.request.authenticated
    assert not any(a.kind == "database" for a in searchd.actions)
    assert [s.id for s in searchd.scenarios] == ["embedding-memory"]
    with pytest.raises(FrozenInstanceError):
        phase4.flags.master = "time_weighting"  # type: ignore[misc]
    assert sorted(p.name for p in PROFILE_DIR.glob("*.toml")) == ["analyticbot-phase4.toml", "searchd-semantic.toml"]


def test_default_profile_is_phase4() -> None:
    assert load_profile().info.id == "analyticbot-phase4"


# --- the Phase 4 profile holds what the runbook and the service's code say ------------------------


def test_phase4_flags_are_the_runbooks_flags(phase4: Profile) -> None:
    names = ("ENABLE_ADVANCED_RECOMMENDATIONS", "ENABLE_TIME_WEIGHTING", "ENABLE_CONTENT_TYPE_ANALYSIS")
    assert tuple(f.env for f in phase4.flags.flags) == names
    assert tuple(f.label for f in phase4.flags.flags) == ("Advanced", "Time-weighting", "Content-type")
    assert phase4.flags.ids == ("advanced", "time_weighting", "content_type")
    assert {f.id: f.depends_on for f in phase4.flags.flags} == {
        "advanced": None,
        "time_weighting": "advanced",
        "content_type": "advanced",
    }
    assert (phase4.flags.write_on, phase4.flags.write_off) == ("true", "false")


@settings(deadline=None)
@given(st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["true", "TRUE", "True", " true", "1", "yes"])))
def test_phase4_read_rule_is_the_services_rule(raw: str | None) -> None:
    for flag in PHASE4_FLAGS.flags:
        # The service's own rule: os.getenv(NAME, "true").lower() == "true".
        assert PHASE4_FLAGS.read(flag.id, raw) == (raw is None or raw.lower() == "true")


def test_phase4_master_decides_the_mode(phase4: Profile) -> None:
    for values in product((False, True), repeat=3):
        given_ = dict(zip(phase4.flags.ids, values, strict=True))
        effective = phase4.flags.effective(given_)
        expected = phase4.probe.answer.expected_modes(effective)
        assert expected == (as_flagset(given_).mode,)
        if not given_["advanced"]:
            assert not any(effective.values())


def test_phase4_flag_actions_write_what_the_runbook_writes(phase4: Profile) -> None:
    """The runbook's edits: quick writes all three false; partial A and B write all three lines."""
    runbook = {
        "quick": {"advanced": False, "time_weighting": False, "content_type": False},
        "partial-time-weighting": {"advanced": True, "time_weighting": False, "content_type": True},
        "partial-content-type": {"advanced": True, "time_weighting": True, "content_type": False},
    }
    env = load_config(PROFILE_DIR.parent / "analyticbot.toml").environment("staging")
    for action_id, writes in runbook.items():
        action = phase4.action(action_id)
        assert action.kind == "flags"
        assert action.flag_changes(phase4.flags.ids) == writes
        plan = build_plan(action_id, env, None)  # type: ignore[arg-type]
        assert plan.steps[0].changes_wanted == writes  # type: ignore[attr-defined]
        assert (plan.title, plan.target, plan.target_s) == (action.title, action.target, action.target_s)
        assert (action.data_loss, action.reversible) == ("None", "Yes (re-enable flags)")


def test_phase4_matrix_and_titles_are_the_runbooks(phase4: Profile) -> None:
    ours = [(r.symptom, r.severity, r.action, r.timeline, r.signal, r.above, r.advice) for r in phase4.matrix]
    runbook = [  # the runbook's "Decision Matrix" table
        ("Response time > 5s", "HIGH", "quick", "< 1 min", "response_time_s", 5.0, None),
        ("Error rate > 5%", "HIGH", "quick", "< 1 min", "error_rate", 0.05, None),
        ("Memory usage > 2GB", "MEDIUM", "partial-time-weighting", "< 2 min", "memory_mb", 2048.0, None),
        (
            "Incorrect recommendations",
            "MEDIUM",
            "partial-time-weighting",
            "< 5 min",
            None,
            None,
            "Investigate, consider partial rollback",
        ),
        (
            "Missing data in response",
            "LOW",
            "check-flags",
            "< 5 min",
            "missing_data",
            None,
            "Check feature flag settings",
        ),
        ("Code bugs", "HIGH", "code", "< 10 min", None, None, None),
    ]
    assert ours == runbook
    assert {a.id: a.short_title for a in phase4.actions} == {  # the decision matrix's words
        "quick": "Quick rollback (disable all)",
        "partial-time-weighting": "Partial rollback (disable time-weighting)",
        "partial-content-type": "Partial rollback (disable content-type analysis)",
        "code": "Full code rollback",
        "database": "Database rollback (migration 004)",
        "full": "Full code rollback with database rollback",
        "investigate": "Investigate",
        "check-flags": "Check feature flag settings",
    }
    assert {v.id: v.title for v in phase4.validations} == {  # the runbook's five, in its words
        "health": "Health check",
        "flags": "Feature flag status",
        "recommendations": "Test recommendations",
        "errors": "Error rate",
        "response_time": "Response time",
    }
    assert {v.check for v in phase4.validations} <= set(validation.CHECK_KINDS)
    assert {v.check for v in phase4.validations} == {"health", "flags", "probe", "errors", "response_time"}


def test_phase4_thresholds_and_bands_are_the_defaults(phase4: Profile) -> None:
    t = Thresholds()
    assert (phase4.memory.ok_below_mb, phase4.memory.warn_below_mb) == (t.memory_ok_mb, t.memory_warn_mb)
    for rss in (None, 10.0, 499.9, 500.0, 999.0, 1000.0, 5000.0):
        assert phase4.memory.level(rss) == matrix.memory_level(t, rss)
    by_check = {v.check: v for v in phase4.validations}
    assert by_check["response_time"].below_s == t.response_time_ok_s
    assert by_check["errors"].window_lines == t.error_lines_window and by_check["errors"].max_error_lines == 0


def test_phase4_checklist_people_and_troubleshooting_are_the_runbooks(phase4: Profile) -> None:
    assert [i.text for i in phase4.checklist] == [  # the runbook's "Post-Rollback Checklist"
        "Health endpoint responding (200 OK)",
        "Feature flags confirmed in logs as this rollback leaves them",  # true of a partial one too
        "No errors in the log since the rollback (last 100 lines at most)",  # what is checked
        "Response times < 2 seconds",
        "Test recommendations returning data",
        "Monitoring dashboards showing normal metrics",
        "Alert channels notified of rollback",
        "Incident report created (if applicable)",
        "Root cause analysis scheduled",
    ]
    validation_of = {i.id: i.validation for i in phase4.checklist}
    for word, check in checklist.CHECK_FOR.items():  # a config's own checklist words tick the same items
        assert validation_of[word] == check
    assert {i.id: i.evidence for i in phase4.checklist if i.evidence} == {
        "alert_notified": "notified",
        "incident_report": "report_written",
    }
    assert not [i for i in phase4.checklist if i.id in ("dashboards", "rca") and i.automatic]
    assert [c.role for c in phase4.contacts] == ["Lead Developer", "DevOps", "DBA"]
    assert [(e.level, e.contacts) for e in phase4.escalation] == [  # the runbook's "Escalation Path"
        (1, ("DevOps",)),
        (2, ("Lead Developer",)),
        (3, ("DBA",)),
        (4, ("Lead Developer", "DevOps", "DBA")),
    ]
    assert {i.id for i in phase4.troubleshooting} >= {
        "env-not-taking-effect",
        "api-wont-start",
        "db-rollback-fails",
        "partial-only-one-flag",
    }
    headings = {fact: issue.heading for fact in FACTS if (issue := phase4.issue_for(fact))}
    assert headings == {
        "stale_process": "Issue 1: Environment changes not taking effect",
        "not_running": "Issue 2: API won't start after rollback",
        "restart_failed": "Issue 2: API won't start after rollback",
        "db_rollback_failed": "Issue 3: Database rollback fails",
        "partial_flag_mismatch": "Issue 4: Partial rollback - only one flag changed",
    }


def test_phase4_code_and_database_actions_are_the_environments_defaults(phase4: Profile) -> None:
    assert Environment.__dataclass_fields__["phase4_commit_message"].default is None  # the profile's, unless set
    assert phase4.action("code").commit_message == "Phase 4: Production deployment with feature flags"
    db = phase4.action("database").database
    assert db is not None
    assert (db.table, db.columns, db.indexes) == (Database.table, Database.columns, Database.indexes)
    assert db.requires_off == phase4.flags.ids
    assert phase4.action("full").combines == ("quick", "code", "database")


def test_phase4_fixes_read_as_the_code_writes_them(phase4: Profile) -> None:
    values = {
        "env_file": "/opt/analyticbot/.env.production",
        "restart_command": "sudo systemctl restart analyticbot-api",
        "reload_command": "sudo systemctl daemon-reload",
        "environ": "/proc/4242/environ",
    }
    fix = phase4.issue("env-not-taking-effect").fix_lines(values)
    assert fix == (
        "grep ENABLE_ /opt/analyticbot/.env.production",
        "sudo systemctl daemon-reload",
        "sudo systemctl restart analyticbot-api",  # no force_restart_command: the plain restart
        "cat /proc/4242/environ | tr '\\0' '\\n' | grep ENABLE_",
    )
    remedy = phase4.issue("env-not-taking-effect").remedy
    assert remedy is not None and remedy.commands(values) == (values["reload_command"], values["restart_command"])
    forced = {**values, "force_restart_command": "sudo pkill -9 -f uvicorn; sudo systemctl start analyticbot-api"}
    assert remedy.commands(forced) == (forced["force_restart_command"],)
    sql = "DROP INDEX IF EXISTS a;\nALTER TABLE posts DROP COLUMN IF EXISTS b;\n"
    lines = phase4.issue("db-rollback-fails").fix_lines({"table": "posts", "manual_sql": sql})
    assert lines[0] == "# check the columns: \\d posts" and lines[-2:] == tuple(sql.splitlines())


def test_phase4_drills_are_the_scenarios_the_console_runs(phase4: Profile) -> None:
    ours = {s.id: s for s in phase4.scenarios}
    code = drills.scenarios(DRILLS)
    assert set(ours) == set(code)
    for name, s in code.items():
        mine = ours[name]
        assert (mine.expected_action, mine.accept, mine.target, mine.target_s, mine.environment, mine.database) == (
            s.expected_action,
            s.accept,
            s.target,
            s.target_s,
            s.environment,
            s.database,
        )
        assert [dict(f.values) for f in mine.faults] == [f.values for f in s.faults]


# --- the log: the simulator's own lines -----------------------------------------------------------


def service_lines(flags: SimFlags) -> list[str]:
    """The flag line as the simulated service logs it, plain and JSON (its own formatters)."""
    message = f"🎛️ Feature flags - {flags.describe()}"
    record = logging.LogRecord("analyticbot.recommendations", logging.INFO, __file__, 1, message, None, None)
    return [_Plain().format(record), _Json().format(record)]


def test_phase4_flag_line_reads_every_line_the_service_writes(phase4: Profile) -> None:
    line = phase4.log.flag_line
    for values in product((False, True), repeat=3):
        sim = SimFlags(*values)
        for text in service_lines(sim):
            assert line.parse(text) == sim.as_dict()
            # as the probes read it
            assert LOG.latest_flags([text], RULES) == (FlagSet(RULES, sim.as_dict()), text)
            assert line.render(sim.as_dict()) in text
    assert line.parse("[INFO] analyticbot.api: Application shutdown complete") is None
    assert (
        phase4.log.plain is not None and phase4.log.plain.level(service_lines(SimFlags(True, True, True))[0]) == "INFO"
    )


def test_phase4_flag_line_ere_is_the_one_awk_matches_on_the_host(phase4: Profile, tmp_path: Path) -> None:
    """The ERE the host's awk will use finds the same last flag line as Python (LC_ALL=C, as logs.py)."""
    log = tmp_path / "app.log"
    lines = [*service_lines(SimFlags(True, True, True)), "[INFO] x: noise {braces} (parens) 100%"]
    lines += [*service_lines(SimFlags(True, False, True))[1:], "[ERROR] x: Feature flags - Advanced: Maybe"]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ere = phase4.log.flag_line.ere
    program = f"/{ere}/ {{ last = $0 }} END {{ print last }}"
    out = subprocess.run(["awk", program, str(log)], capture_output=True, env={"LC_ALL": "C"}, check=True)
    found = out.stdout.decode("utf-8").rstrip("\n")
    assert found == lines[3]
    assert phase4.log.flag_line.parse(found) == {"advanced": True, "time_weighting": False, "content_type": True}
    # The code's own awk program holds the same expression.
    assert ere in LOG.awk_program


def test_searchd_flag_line_in_its_own_format(searchd: Profile, tmp_path: Path) -> None:
    line = "2025-11-21T03:10:00Z INFO searchd.query flags: semantic=on reranker=off"
    assert searchd.log.flag_line.parse(line) == {"semantic": True, "reranker": False}
    assert searchd.log.flag_line.parse("flags: semantic=maybe reranker=off") is None
    assert searchd.log.plain is not None and searchd.log.plain.level(line) == "INFO"
    assert searchd.log.json is None and searchd.log.formats == ("plain",)
    log = tmp_path / "searchd.log"
    log.write_text(f"{line}\n2025-11-21T03:10:01Z INFO searchd.query search request q=x\n", encoding="utf-8")
    program = f"/{searchd.log.flag_line.ere}/ {{ print }}"
    out = subprocess.run(["awk", program, str(log)], capture_output=True, env={"LC_ALL": "C"}, check=True)
    assert out.stdout.decode() == line + "\n"


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["semantic", "reranker"]), st.booleans(), min_size=2))
def test_searchd_flag_line_round_trips(values: dict[str, bool]) -> None:
    line = SEARCHD_PROFILE.log.flag_line
    assert line.parse("prefix " + line.render(values) + " suffix") == values


@settings(deadline=None)
@given(st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["ON", "On", "1", "yes", "true", "off", "0"])))
def test_searchd_read_rule(raw: str | None) -> None:
    rules = SEARCHD_PROFILE.flags
    want = raw is not None and raw.lower() in {"on", "true", "1", "yes"}
    assert rules.read("semantic", raw) is want


def test_searchd_writes_in_the_files_own_case(searchd: Profile, phase4: Profile) -> None:
    assert [searchd.flags.written(False, r) for r in ("ON", "On", "on", "1", None)] == [
        "OFF",
        "Off",
        "off",
        "off",
        "off",
    ]
    assert phase4.flags.written(False, "True") == "false"  # Phase 4 writes the runbook's spelling


# --- the probe: predicates on the simulator's real bodies -------------------------------------------


def best_times_body(flags: SimFlags, *, posts: bool = True) -> dict:
    """The best-times answer as the simulated service builds it (service.best_times)."""
    rows_of = generate_posts(CHANNEL_ID) if posts else []
    from datetime import UTC, datetime

    try:
        rows = analytics.synthetic_rows(rows_of, flags, days=90, now=datetime.now(UTC))
        data = analytics.build_data(rows, flags, data_source="synthetic")
    except analytics.QueryError as exc:
        data = analytics.failed_data(CHANNEL_ID, str(exc))
    return {"success": True, "channel_id": CHANNEL_ID, "data": data, "analysis_type": "x", "generated_at": "now"}


def test_phase4_predicates_classify_advanced_legacy_and_failed(phase4: Profile) -> None:
    answer = phase4.probe.answer
    for values in product((False, True), repeat=3):
        flags = SimFlags(*values)
        got = answer.classify(200, best_times_body(flags))
        if flags.advanced and not flags.content_type:  # Scenario B: the real code's query fails
            assert (got.kind, got.failure) == ("failed", "status-failed")
            assert "content_type_stats" in got.message and got.data_present is False
            continue
        assert got.kind == "ok" and got.count == POST_COUNT and got.data_present is True
        effective = phase4.flags.effective(dict(zip(phase4.flags.ids, values, strict=True)))
        assert got.modes == (flags.mode,) == answer.expected_modes(effective)


def test_phase4_predicates_tell_the_other_shapes_apart(phase4: Profile) -> None:
    answer = phase4.probe.answer
    body = best_times_body(SimFlags(True, True, True))
    assert answer.classify(200, {**body, "success": False}).failure == "success-false"
    empty = answer.classify(200, best_times_body(SimFlags(False, False, False), posts=False))
    assert (empty.kind, empty.modes, empty.data_present, empty.count) == ("ok", ("legacy",), False, 0)
    assert answer.classify(401, {"detail": "Not authenticated"}).message == "HTTP 401, expected 200: Not authenticated"
    assert answer.classify(200, [1, 2]).message == "HTTP 200 but `$` is an array of 2, not object"
    assert answer.classify(200, {"data": None}).message == "HTTP 200 but `data` is null, not object"
    wrong = {**body, "data": {**body["data"], "total_posts_analyzed": "629"}}
    assert (
        answer.classify(200, wrong).message
        == "HTTP 200 but `data.total_posts_analyzed` is a string ('629'), not integer"
    )
    assert answer.classify(200, {**body, "success": "yes"}).kind == "error"
    # The runbook's own null check cannot tell the modes apart; the profile's predicates can.
    legacy = best_times_body(SimFlags(False, True, True))["data"]
    assert legacy["best_day_hour_combinations"] is not None


def search_body(retriever: str = "semantic", reranked: bool = True, hits: int = 3) -> dict:
    results = [{"id": f"doc-{i}", "score": 1.0 / (i + 1), "retriever": retriever} for i in range(hits)]
    return {"results": results, "total_hits": hits, "retriever": retriever, "reranked": reranked, "took_ms": 41}


def test_searchd_predicates_and_modes(searchd: Profile) -> None:
    answer = searchd.probe.answer
    for semantic, reranker in product((False, True), repeat=2):
        body = search_body("semantic" if semantic else "keyword", reranker)
        got = answer.classify(200, body)
        expected = answer.expected_modes(searchd.flags.effective({"semantic": semantic, "reranker": reranker}))
        assert got.kind == "ok" and got.modes == expected and len(expected) == 2 and got.count == 3
    failed = answer.classify(200, {"error": {"code": "vector_timeout", "message": "vector store timed out"}})
    assert (failed.kind, failed.failure, failed.message) == ("failed", "error-object", "vector store timed out")
    degraded = answer.classify(200, {"results": [], "degraded": True, "degraded_reason": "index offline"})
    assert (degraded.failure, degraded.message) == ("degraded", "index offline")
    assert answer.classify(200, search_body(hits=0)).data_present is False
    assert "not one of" in answer.classify(200, search_body(retriever="hybrid")).message
    path, params = searchd.probe.request.target({"query": "rollback drill", "limit": 10})
    assert (path, params) == ("/v1/search", {"q": "rollback drill", "limit": "10"})


def test_phase4_login_and_request_templates(phase4: Profile) -> None:
    probe = phase4.probe
    values = {p.name: p.value_for("production") for p in probe.parameters}
    assert values["channel_id"] == CHANNEL_ID and values["days"] == 90 and values["login_email"] == LOGIN_EMAIL
    assert values["password"].file == "/etc/rollback-console/production.password"  # a reference, never a secret
    values["password"] = "s3cret"
    assert probe.login is not None
    assert probe.login.json(values) == {"email": LOGIN_EMAIL, "password": "s3cret", "remember_me": False}
    assert probe.request.target(values) == (f"/analytics/predictive/best-times/{CHANNEL_ID}", {"days": "90"})
    with pytest.raises(KeyError):
        probe.request.target({"days": 90})
    assert fill("{force_restart_command|restart_command:q}", {"restart_command": "a b"}, repr) == "'a b'"


# --- round trip against the running simulator ------------------------------------------------------


def test_phase4_profile_drives_the_real_simulator(make_simulation, phase4: Profile) -> None:
    """Login, best-times, the process environment and the log, all as the profile says: the
    simulator (real processes, real HTTP, its own log files) answers in advanced, legacy and
    failed modes, and the profile tells which, as the flags it set imply."""
    import httpx

    from console.envfile import parse_env
    from console.simulator import database
    from console.simulator.repo import PHASE4_MESSAGE

    sim = make_simulation(environments=("staging", "production"))
    probe, flags = phase4.probe, phase4.flags
    assert probe.login is not None
    assert phase4.action("code").commit_message == PHASE4_MESSAGE
    db = phase4.action("database").database
    assert db is not None and (db.rollback_script, db.migration_script) == (
        database.ROLLBACK_SCRIPT,
        database.MIGRATION_SCRIPT,
    )

    def ask(env: str) -> tuple[int, object]:
        host = sim.host(env)
        values = {p.name: p.value_for(env) for p in probe.parameters}
        values["password"] = sim.password(env)  # what the secret reference resolves to
        with httpx.Client(base_url=host.api_url, timeout=15.0) as client:
            login = client.request(probe.login.method, probe.login.endpoint, json=probe.login.json(values))
            token = probe.login.token.value(login.json())
            assert login.status_code == 200 and isinstance(token, str)
            path, params = probe.request.target(values)
            headers = {probe.login.header: f"{probe.login.scheme} {token}"}
            r = client.request(probe.request.method, path, params=params, headers=headers)
            refused = client.request(probe.request.method, path, params=params)
        assert probe.answer.classify(refused.status_code, refused.json()).kind == "error"
        return r.status_code, r.json()

    def last_flag_line(env: str) -> dict[str, bool] | None:
        """The log's last flag line, found by the host's awk with the profile's ERE."""
        program = f"/{phase4.log.flag_line.ere}/ {{ last = $0 }} END {{ print last }}"
        out = subprocess.run(["awk", program, str(sim.host(env).log_file)], capture_output=True, env={"LC_ALL": "C"})
        return phase4.log.flag_line.parse(out.stdout.decode("utf-8"))

    def process_flags(env: str) -> dict[str, bool]:
        pid = sim.host(env).pid()
        environ = Path(phase4.process.environ.format(pid=pid)).read_bytes().split(b"\0")
        pairs = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
        return flags.read_environ(pairs)

    def apply(env: str, action_id: str) -> dict[str, bool]:
        host = sim.host(env)
        changes = phase4.action(action_id).flag_changes(flags.ids)
        parsed = parse_env(host.env_file.read_bytes(), str(host.env_file))
        new = parsed.with_flags({flags.flag(f).env: v for f, v in changes.items()}, flags)
        host.env_file.write_bytes(parsed.encoded(new))
        result = sim.run(env, "restart_command")
        assert result.returncode == 0, result.stderr
        return changes

    all_on = dict.fromkeys(flags.ids, True)
    for env in ("staging", "production"):  # plain log lines, then JSON lines
        answer = probe.answer.classify(*ask(env))
        assert (answer.kind, answer.modes, answer.count) == ("ok", ("advanced",), POST_COUNT)
        assert answer.modes == probe.answer.expected_modes(flags.effective(all_on))
        assert last_flag_line(env) == all_on == process_flags(env)

    after = apply("staging", "quick")
    assert process_flags("staging") == after == dict.fromkeys(flags.ids, False)
    answer = probe.answer.classify(*ask("staging"))
    assert (answer.kind, answer.modes, answer.data_present) == ("ok", ("legacy",), True)
    assert answer.modes == probe.answer.expected_modes(flags.effective(after)) and last_flag_line("staging") == after

    after = apply("production", "partial-content-type")  # Scenario B: the real code's advanced query fails
    assert after == {"advanced": True, "time_weighting": True, "content_type": False} == process_flags("production")
    answer = probe.answer.classify(*ask("production"))
    assert (answer.kind, answer.failure) == ("failed", "status-failed") and "content_type_stats" in answer.message
    assert last_flag_line("production") == after


# --- the guide and the checker ----------------------------------------------------------------------

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "your-own-runbook.md"


def test_the_guides_steps_make_a_valid_profile(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    path = tmp_path / "notes.toml"
    path.write_text("\n".join(blocks), encoding="utf-8")
    profile = load_profile(path)
    assert profile.flags.ids == ("smart_tags", "summaries") and profile.flags.master is None
    assert profile.probe.answer.classify(200, {"tags": ["a"], "tags_source": "model"}).modes == ("smart",)


def test_the_checker_says_what_the_guide_says(tmp_path: Path) -> None:
    import sys

    quoted = re.search(r"```text\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert quoted is not None
    (tmp_path / "my-service.toml").write_text("", encoding="utf-8")
    guide = GUIDE.read_text(encoding="utf-8")
    assert ".venv/bin/rollback-console config validate --profile my-service.toml" in guide
    for command in (["console", "config", "validate", "--profile"], ["console.profile"]):
        run = subprocess.run(
            [sys.executable, "-m", *command, "my-service.toml"], cwd=tmp_path, capture_output=True, text=True
        )
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.splitlines()[:-1] == quoted.group(1).splitlines()
    ok = subprocess.run([sys.executable, "-m", "console.profile", str(SEARCHD)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith(f"{SEARCHD}: ok — searchd: 2 flags")


def test_item_lines_of_a_list_written_over_lines() -> None:
    from console.profile.patterns import item_line

    text = [
        "shape = [  # comment with ] and , and [",
        '  { path = "a", equals = "x], y" },',
        "",
        "  # a comment line, [not] an item",
        '  { path = "b", any = [ { path = "c", equals = 1 }, { path = "d", equals = 2 } ] }, 3,',
        '  """multi',
        '  line ] string""",',
        "  true",
        "]",
        "next = 1",
    ]
    assert [item_line(text, 1, i) for i in range(6)] == [2, 5, 5, 6, 8, None]
    assert item_line(['x = "no list"'], 1, 0) is None


def test_a_profile_asked_from_threads_at_once_is_read_once(tmp_path: Path) -> None:
    """The probe worker's first round asks for the profile from a thread and the event loop
    at once: both get the one parse (it was read twice, each read slowed by the other)."""
    import threading

    from console.profile import profile_at

    (tmp_path / "profiles").mkdir()
    (tmp_path / "drills").symlink_to(PROFILE_DIR.parent / "drills")  # the profile's `../drills`
    path = tmp_path / "profiles" / "copy.toml"
    path.write_bytes(DEFAULT_PROFILE.read_bytes())
    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(profile_at(path))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(p is got[0] for p in got)
