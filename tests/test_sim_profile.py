"""The simulator simulates any profile: `simulate --dir DIR --profile FILE` as a real process,
checked with plain HTTP, the files it writes and the profile's own predicates."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dotenv import dotenv_values

from console.config import Environment, load_config
from console.config.model import expand
from console.profile import PROFILE_DIR, Profile, load_profile
from console.simulator import answers
from console.simulator.answers import GenerationError
from console.simulator.generic_world import ProfileSimulation

# pytest-xdist: the whole file on one worker, so its module-scoped fixture is set up once
pytestmark = pytest.mark.xdist_group("test_sim_profile")

SEARCHD = PROFILE_DIR / "searchd-semantic.toml"
TIMEOUT = httpx.Timeout(15.0)


# --- every profile: answers its own classify accepts ------------------------------------


@pytest.mark.parametrize("path", sorted(PROFILE_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_profile_generates_answers_its_own_classify_accepts(path: Path) -> None:
    profile = load_profile(path)
    spec = profile.probe.answer
    seen_modes: set[str] = set()
    for values in answers.flag_combinations(profile):
        effective = profile.flags.effective(values)
        got = spec.classify(spec.status, answers.ok_answer(profile, effective))
        assert got.kind == "ok" and got.data_present is not False, (values, got)
        assert set(got.modes) == set(spec.expected_modes(effective)), values
        seen_modes.update(got.modes)
    assert seen_modes == {m.id for m in spec.modes}, "every mode is answered under some flags"
    for shape in spec.failures:
        got = spec.classify(spec.status, answers.failure_answer(profile, shape.id, "it broke"))
        assert (got.kind, got.failure, got.message) == (
            "failed",
            shape.id,
            "it broke" if shape.message else shape.title,
        )
    for which in ("liveness", "readiness"):
        endpoint = getattr(profile.health, which)
        if endpoint is not None:
            status, body = answers.health_answer(profile, which, True, "1")
            assert status == endpoint.status and endpoint.ok.holds(body)
            status, body = answers.health_answer(profile, which, False, "1")
            assert status == 503 and not endpoint.ok.holds(body)


RICH_ANSWER = """envelope = [
  { path = "$", type = "object" },
  { path = "error", type = ["object", "null"] },
  { path = "meta", exists = true },
  { path = "meta.version", not_equals = "0" },
]
shape = [
  { path = "results", type = "array" },
  { path = "results[1].score", type = "number", above = 0.5, at_most = 1 },
  { path = "total_hits", type = "integer", at_least = 0, below = 1000 },
  { path = "retriever", one_of = ["semantic", "keyword"] },
  { path = "reranked", type = "boolean" },
  { path = "trace", is_null = true },
  { not = { path = "cursor", exists = true } },
  { any = [ { path = "took_ms", type = "integer", at_least = 1 }, { path = "cached", equals = true } ] },
]
"""


def test_the_generator_covers_the_predicate_vocabulary(tmp_path: Path) -> None:
    """searchd with every kind of test in its answer: exists, is_null, not_equals, numbers,
    an item of a list, not, any; a mode written with not."""
    text = SEARCHD.read_text(encoding="utf-8")
    text = text[: text.index("envelope = [")] + RICH_ANSWER + text[text.index("data_present =") :]
    old = 'when = { path = "reranked", equals = false }'
    assert text.count(old) == 1
    path = tmp_path / "rich.toml"
    path.write_text(text.replace(old, 'when = { not = { path = "reranked", equals = true } }'), encoding="utf-8")
    profile = load_profile(path)
    spec = profile.probe.answer
    assert len(spec.shape) == 8
    answers.check_profile(profile)
    for values in answers.flag_combinations(profile):
        effective = profile.flags.effective(values)
        doc = answers.ok_answer(profile, effective)
        assert all(p.holds(doc) for p in (*spec.envelope, *spec.shape)) and "cursor" not in doc
        got = spec.classify(spec.status, doc)
        assert got.kind == "ok" and set(got.modes) == set(spec.expected_modes(effective))


def test_a_profile_the_generator_cannot_satisfy_is_refused_naming_the_key(tmp_path: Path) -> None:
    """A mode no answer of the profile's shape can have: simulate says which key, starts nothing."""
    text = SEARCHD.read_text(encoding="utf-8")
    old = 'when = { path = "retriever", equals = "semantic" }'
    assert text.count(old) == 1
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace(old, 'when = { path = "retriever", equals = "hybrid" }'), encoding="utf-8")
    with pytest.raises(GenerationError, match=r"probe\.modes\[0\]\.when \(mode \"semantic\"\)"):
        answers.check_profile(load_profile(broken))
    directory = tmp_path / "sim"
    done = subprocess.run(
        [sys.executable, "-m", "console", "simulate", "--dir", str(directory), "--profile", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f'{broken}: probe.modes[0].when (mode "semantic")' in done.stderr
    assert "retriever equals 'hybrid'" in done.stderr and "Traceback" not in done.stderr
    assert not directory.exists() or not any(directory.iterdir()), "nothing was laid out"
    no_db = subprocess.run(
        [sys.executable, "-m", "console", "simulate", "--dir", str(directory), "--profile", str(SEARCHD), "--no-db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_db.returncode == 2 and "--no-db is for the Phase 4 simulation" in no_db.stderr


# --- the searchd world, as `simulate --profile` runs it ----------------------------------


class World:
    """A running `rollback-console simulate --dir DIR --profile searchd` and what it wrote."""

    def __init__(self, directory: Path, proc: subprocess.Popen[str], output: str) -> None:
        self.directory, self.proc, self.output = directory, proc, output
        self.profile = load_profile(SEARCHD)
        self.config = load_config(directory / "console.toml")

    def env(self, name: str = "production") -> Environment:
        return self.config.environment(name)

    def path(self, key: str, env: str = "production") -> Path:
        e = self.env(env)
        return Path(expand(getattr(e, key), e.hosts[0]))

    def url(self, env: str = "production") -> str:
        e = self.env(env)
        return expand(e.api_url, e.hosts[0])

    def run(self, key: str, env: str = "production") -> subprocess.CompletedProcess[str]:
        e = self.env(env)
        command = expand(getattr(e, key), e.hosts[0])
        return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60)

    def fault(self, *assignments: str, env: str = "production") -> subprocess.CompletedProcess[str]:
        cli = [sys.executable, "-m", "console", "fault", "--dir", str(self.directory), env, *assignments]
        return subprocess.run(cli, capture_output=True, text=True, timeout=30)

    def env_flags(self, env: str = "production") -> dict[str, bool]:
        """The flags as the service's own rule reads the env file."""
        values = dotenv_values(stream=io.StringIO(self.path("env_file", env).read_text(encoding="utf-8")))
        return self.profile.flags.read_environ(values)

    def search(self, env: str = "production") -> httpx.Response:
        p = self.profile.probe
        values = {name: p.parameter(name).value_for(env) for name in ("query", "limit")}
        path, params = p.request.target(values)
        return httpx.get(self.url(env) + path, params=params, timeout=TIMEOUT)

    def classify(self, env: str = "production") -> Any:
        r = self.search(env)
        return self.profile.probe.answer.classify(r.status_code, r.json())

    def last_flag_line(self, env: str = "production") -> dict[str, bool] | None:
        lines = self.path("log_file", env).read_text(encoding="utf-8").splitlines()
        found = [v for v in map(self.profile.log.flag_line.parse, lines) if v is not None]
        return found[-1] if found else None

    def git(self, *args: str, env: str = "production") -> str:
        done = subprocess.run(["git", "-C", str(self.path("repo_path", env)), *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def pid(self, env: str = "production") -> int:
        done = self.run("pid_command", env)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("searchd") / "sim"
    command = [sys.executable, "-m", "console", "simulate", "--dir", str(directory), "--profile", str(SEARCHD)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        assert "Ctrl-C to stop" in "".join(lines), "".join(lines)
        yield World(directory, proc, "".join(lines))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def fresh(world: World) -> Iterator[World]:
    """The world with no faults and every flag on again, after the test."""
    yield world
    world.fault("--clear")
    env_file = world.path("env_file")
    text = env_file.read_text(encoding="utf-8")
    for f in world.profile.flags.flags:
        text = "\n".join(f"{f.env}=on" if line.startswith(f"{f.env}=") else line for line in text.split("\n"))
    env_file.write_text(text, encoding="utf-8")
    assert world.run("restart_command").returncode == 0


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_the_world_is_the_profiles_and_its_config_says_so(world: World) -> None:
    assert "Simulated searchd is running" in world.output and "failure=error-object" in world.output
    check = subprocess.run(
        [sys.executable, "-m", "console", "config", "validate", str(world.directory / "console.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    for name in ("staging", "production"):
        env = world.env(name)
        assert env.profile == str(SEARCHD.resolve()) and env.database is None
        assert env.phase4_commit_message == world.profile.action("code").commit_message
        text = world.path("env_file", name).read_text(encoding="utf-8")
        assert "ENABLE_SEMANTIC_SEARCH=on\n" in text and "ENABLE_RERANKER=on\n" in text
    assert not list((world.directory / "secrets").glob("*.dsn")), "no database for a profile without one"
    log = world.git("log", "--format=%s")
    assert world.profile.action("code").commit_message in log.splitlines()


def test_health_answers_ok_by_the_profiles_predicate(world: World) -> None:
    endpoint = world.profile.health.liveness
    assert endpoint is not None
    r = httpx.get(world.url() + endpoint.endpoint, timeout=TIMEOUT)
    assert r.status_code == endpoint.status and endpoint.ok.holds(r.json()), r.text


def test_the_probe_answers_ok_in_the_modes_of_the_env_files_flags(world: World) -> None:
    flags = world.env_flags()
    assert flags == {"semantic": True, "reranker": True}
    got = world.classify()
    expected = world.profile.probe.answer.expected_modes(world.profile.flags.effective(flags))
    assert got.kind == "ok" and got.data_present and set(got.modes) == set(expected) == {"semantic", "reranked"}
    assert world.last_flag_line() == flags
    lines = world.path("log_file").read_text(encoding="utf-8").splitlines()
    assert any(world.profile.log.request_line in line for line in lines[-3:])
    assert world.profile.log.plain is not None and world.profile.log.plain.level(lines[-1]) == "INFO"


def test_a_flag_turned_off_in_the_env_file_acts_after_the_restart(fresh: World) -> None:
    world = fresh
    env_file = world.path("env_file")
    env_file.write_text(env_file.read_text().replace("ENABLE_RERANKER=on", "ENABLE_RERANKER=OFF"))
    assert world.classify().modes == ("semantic", "reranked"), "read at start only: nothing yet"
    assert world.last_flag_line() == {"semantic": True, "reranker": True}
    restarted = world.run("restart_command")
    assert restarted.returncode == 0 and "searchd started" in restarted.stdout, restarted.stderr
    got = world.classify()
    assert world.last_flag_line() == {"semantic": True, "reranker": False} == world.env_flags()
    assert got.kind == "ok" and set(got.modes) == {"semantic", "plain-order"}
    environ = Path(f"/proc/{world.pid()}/environ").read_bytes().split(b"\0")
    assert b"ENABLE_RERANKER=OFF" in environ


def test_failure_shape_faults_make_classify_say_failed(fresh: World) -> None:
    world = fresh
    for shape in world.profile.probe.answer.failures:
        done = world.fault(f"failure={shape.id}")
        assert done.returncode == 0 and f"failure={shape.id}" in done.stdout, done.stderr
        got = world.classify()
        assert (got.kind, got.failure) == ("failed", shape.id)
        last = world.path("log_file").read_text(encoding="utf-8").splitlines()[-1]
        assert world.profile.log.plain is not None and world.profile.log.plain.level(last) == "ERROR"
    bad = world.fault("failure=status-failed")
    assert bad.returncode == 2 and "'error-object', 'degraded'" in bad.stderr
    world.fault("--clear")
    assert world.classify().kind == "ok"


def test_ready_down_makes_the_truthful_endpoint_fail_its_predicate(fresh: World) -> None:
    world = fresh
    endpoint = world.profile.health.liveness
    assert endpoint is not None and world.profile.health.truth == "liveness"
    assert world.fault("ready_down=true").returncode == 0
    r = httpx.get(world.url() + endpoint.endpoint, timeout=TIMEOUT)
    assert r.status_code == 503 and not endpoint.ok.holds(r.json())
    assert world.run("restart_command").returncode == 0, "a service that answers has started"
    assert world.classify().kind == "ok", "the search itself still works"


def test_memory_caused_by_a_flag_stops_when_that_flag_is_off(fresh: World) -> None:
    world = fresh
    pid = world.pid()
    base = rss_mb(pid)
    assert world.fault("memory_mb=250", "caused_by=semantic").returncode == 0
    assert wait_for(lambda: rss_mb(pid) >= 240), f"RSS stayed at {rss_mb(pid):.0f} MB"
    wrong = world.fault("caused_by=advanced")
    assert wrong.returncode == 2 and "'semantic', 'reranker'" in wrong.stderr
    env_file = world.path("env_file")
    env_file.write_text(env_file.read_text().replace("ENABLE_SEMANTIC_SEARCH=on", "ENABLE_SEMANTIC_SEARCH=off"))
    assert world.run("restart_command").returncode == 0
    pid = world.pid()
    time.sleep(1.0)  # several fault ticks: a process with semantic off must not grow
    assert rss_mb(pid) < base + 100
    assert set(world.classify().modes) == {"keyword", "reranked"}


def test_latency_caused_by_the_reranker(fresh: World) -> None:
    world = fresh
    assert world.fault("latency_s=1.2", "caused_by=reranker").returncode == 0
    started = time.monotonic()
    assert world.search().status_code == 200
    assert time.monotonic() - started >= 1.2


def test_a_code_rollback_reverts_the_release_and_the_flags_go_with_it(world: World) -> None:
    """On staging (the other tests use production): revert, rebuild, restart, as the runbook does."""
    message = world.profile.action("code").commit_message
    subjects = dict(line.split(" ", 1) for line in world.git("log", "--format=%H %s", env="staging").splitlines())
    release = next(sha for sha, subject in subjects.items() if subject == message)
    world.git("revert", "--no-edit", release, env="staging")
    built = world.run("rebuild_command", "staging")
    assert built.returncode == 0 and "code absent" in built.stdout, built.stderr
    assert world.run("restart_command", "staging").returncode == 0
    got = world.classify("staging")
    assert world.env_flags("staging") == {"semantic": True, "reranker": True}, "the env file still says on"
    assert world.last_flag_line("staging") == {"semantic": False, "reranker": False}
    assert got.kind == "ok" and set(got.modes) == {"keyword", "plain-order"}


def test_a_profile_with_a_login_logs_in_and_refuses_without_a_token(tmp_path: Path) -> None:
    """Phase 4's profile through the generic service: its login, its bearer token, its JSON log."""
    with ProfileSimulation(tmp_path / "sim", profile=PROFILE_DIR / "analyticbot-phase4.toml") as sim:
        profile: Profile = sim.profile
        host = sim.host("production")
        probe = profile.probe
        assert probe.login is not None
        values = {p.name: p.value_for("production") for p in probe.parameters}
        values["password"] = sim.password("production")
        path, params = probe.request.target(values)
        refused = httpx.get(host.api_url + path, params=params, timeout=TIMEOUT)
        assert refused.status_code == 401
        wrong = httpx.post(host.api_url + probe.login.endpoint, json={**probe.login.json(values), "password": "x"})
        assert wrong.status_code == probe.login.refused
        login = httpx.post(host.api_url + probe.login.endpoint, json=probe.login.json(values), timeout=TIMEOUT)
        assert login.status_code == 200, login.text
        token = probe.login.token.value(login.json())
        headers = {probe.login.header: f"{probe.login.scheme} {token}"}
        r = httpx.get(host.api_url + path, params=params, headers=headers, timeout=TIMEOUT)
        got = probe.answer.classify(r.status_code, r.json())
        assert got.kind == "ok" and got.modes == ("advanced",)
        lines = host.log_file.read_text(encoding="utf-8").splitlines()
        assert profile.log.flag_line.parse(lines[-2]) == {
            "advanced": True,
            "time_weighting": True,
            "content_type": True,
        }
        assert lines[-1].startswith("{") and "Using ADVANCED query with new features" in lines[-1]
        assert sim.database_note and "Phase 4's schema only" in sim.database_note


def test_error_rate_alternates_http_500_and_the_first_failure_shape(fresh: World) -> None:
    world = fresh
    assert world.fault("error_rate=1").returncode == 0
    responses = [world.search() for _ in range(4)]
    assert [r.status_code for r in responses] == [500, 200, 500, 200]
    spec = world.profile.probe.answer
    assert [spec.classify(r.status_code, r.json()).kind for r in responses] == ["error", "failed"] * 2
    assert spec.classify(200, responses[1].json()).failure == spec.failures[0].id
    assert responses[0].json() == {"message": "Internal Server Error"}, "where error_detail says to look"
    lines = world.path("log_file").read_text(encoding="utf-8").splitlines()[-12:]
    plain = world.profile.log.plain
    assert plain is not None and sum(plain.level(line) == "ERROR" for line in lines) == 4


def test_crash_on_start_and_stale_restart_as_the_phase4_simulator_has_them(fresh: World) -> None:
    world = fresh
    assert world.fault("crash_on_start=true").returncode == 0
    crashed = world.run("restart_command")
    assert crashed.returncode != 0 and "searchd failed to start" in crashed.stderr
    assert "StartupCrash" in world.run("service_log_command").stdout
    assert world.run("pid_command").returncode == 1
    assert world.fault("--clear", "stale_restart=true").returncode == 0
    assert world.run("restart_command").returncode == 0
    env_file = world.path("env_file")
    env_file.write_text(env_file.read_text().replace("ENABLE_RERANKER=on", "ENABLE_RERANKER=off"))
    assert world.run("restart_command").returncode == 0
    world.search()
    assert world.last_flag_line() == {"semantic": True, "reranker": True}, "a stale restart keeps the old environment"
    assert world.run("force_restart_command").returncode == 0
    world.search()
    assert world.last_flag_line() == {"semantic": True, "reranker": False} == world.env_flags()
