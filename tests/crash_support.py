"""The crash matrix's machinery: what "the same state" means, putting a simulation back
into a known state between trials, and one trial (kill the real CLI at a named point,
then resume / undo / restore it as an operator would).

The state compared is what an operator would: every host's env file byte for byte, the
checkout's HEAD and tree and what was built from it, the flags the running process has,
the database's schema dump, indexes, migration records and a digest of the kept
columns' values row by row, and whether the environment's lock is free.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from console.failpoints import ENV as FAILPOINTS
from console.journal import Journal
from console.simulator.world import SimHost, Simulation
from tests.engine_support import cli, journal_of, process_flags

KILLED = -9


@dataclass(frozen=True)
class HostState:
    env_file: bytes
    head: str
    tree: str
    subject: str
    built: tuple[str, bool]  # (commit, phase4) of build.json
    process: dict[str, bool] | None  # the running API's flags; None: not running


@dataclass(frozen=True)
class State:
    hosts: dict[str, HostState]
    database: dict[str, Any] | None
    locked: bool

    def differences(self, other: State, *, exact_head: bool = True) -> list[str]:
        """What differs from ``other`` (``exact_head``: the commit, not only the tree). The
        lock is judged on its own (``Scenario.lock_ok``): a kill leaves it behind by design."""
        out = []
        for name, mine in self.hosts.items():
            theirs = other.hosts[name]
            if mine.env_file != theirs.env_file:
                out.append(f"{name}: env file {mine.env_file[-120:]!r} ≠ {theirs.env_file[-120:]!r}")
            if (mine.head != theirs.head) if exact_head else (mine.tree, mine.subject) != (theirs.tree, theirs.subject):
                out.append(f"{name}: code {mine.head[:7]} {mine.subject!r} ≠ {theirs.head[:7]} {theirs.subject!r}")
            if mine.built[1] != theirs.built[1] or mine.built[0] != mine.head:
                out.append(f"{name}: build {mine.built} (HEAD {mine.head[:7]}) ≠ {theirs.built}")
            if mine.process != theirs.process:
                out.append(f"{name}: process flags {mine.process} ≠ {theirs.process}")
        if self.database != other.database:
            keys = [k for k in (self.database or {}) if (self.database or {}).get(k) != (other.database or {}).get(k)]
            out.append(f"database differs in {keys or 'presence'}")
        return out


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def host_state(host: SimHost) -> HostState:
    build = json.loads((host.home / "build" / "build.json").read_text())
    try:
        process: dict[str, bool] | None = process_flags(host).as_dict()
    except (AssertionError, OSError):
        process = None
    return HostState(
        env_file=host.env_file.read_bytes(),
        head=git(host.repo, "rev-parse", "HEAD"),
        tree=git(host.repo, "rev-parse", "HEAD^{tree}"),
        subject=git(host.repo, "log", "-1", "--format=%s"),
        built=(build["commit"], bool(build["phase4"])),
        process=process,
    )


def lock_dir(sim: Simulation, env: str) -> Path:
    return sim.host(env).home / f"rollback-console-{env}.lock"


def capture(sim: Simulation, env: str) -> State:
    hosts = {h.name: host_state(h) for h in sim.hosts(env)}
    database = db_digest(sim, env) if sim.has_database else None
    return State(hosts, database, lock_dir(sim, env).exists())


# --- the database -------------------------------------------------------------------------


def db_digest(sim: Simulation, env: str) -> dict[str, Any]:
    """Schema dump (pg_dump --schema-only), indexes, migration versions, and a digest of
    every row's kept-column values (by primary key)."""
    dsn = sim.dsn(env) or ""
    assert sim.cluster is not None
    dump = subprocess.run(
        [str(sim.cluster.bin_dir / "pg_dump"), "--schema-only", "--no-owner", "--dbname", dsn],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    skip = ("--", "\\restrict", "\\unrestrict")  # comments, and pg_dump's random per-dump key
    schema = "\n".join(line for line in dump.splitlines() if not line.startswith(skip))
    return {"schema": schema, **asyncio.run(_db_values(dsn))}


async def _db_values(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        columns = await conn.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'")
        rows = None
        if {"has_video", "has_media"} <= {r["column_name"] for r in columns}:
            values = await conn.fetch("SELECT id, has_video, has_media FROM posts ORDER BY id")
            rows = hashlib.sha256(repr([tuple(r) for r in values]).encode()).hexdigest()
        indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'posts'")
        migrations = await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        count = await conn.fetchval("SELECT count(*) FROM posts")
    finally:
        await conn.close()
    return {
        "indexes": sorted(tuple(r) for r in indexes),
        "migrations": [r["version"] for r in migrations],
        "rows": rows,
        "count": count,
    }


@dataclass
class DatabaseSnapshot:
    """Enough to put migration 004 (and 005's index) back by hand between trials."""

    columns: list[dict[str, Any]] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    migrations: list[str] = field(default_factory=list)


async def db_snapshot(dsn: str) -> DatabaseSnapshot:
    conn = await asyncpg.connect(dsn)
    try:
        columns = [
            dict(r)
            for r in await conn.fetch(
                "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, "
                "pg_get_expr(d.adbin, d.adrelid) AS default FROM pg_attribute a LEFT JOIN pg_attrdef d "
                "ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = 'posts'::regclass "
                "AND a.attname IN ('has_video', 'has_media') AND NOT a.attisdropped ORDER BY a.attnum"
            )
        ]
        indexes = [r["indexdef"] for r in await conn.fetch("SELECT indexdef FROM pg_indexes WHERE tablename = 'posts'")]
        rows = [tuple(r) for r in await conn.fetch("SELECT id, has_video, has_media FROM posts ORDER BY id")]
        migrations = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    finally:
        await conn.close()
    return DatabaseSnapshot(columns, indexes, rows, migrations)


async def db_reset(dsn: str, snap: DatabaseSnapshot) -> None:
    """Put the snapshot's columns, values, indexes and migration records back (one transaction)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for c in snap.columns:
                default = f" DEFAULT {c['default']}" if c["default"] else ""
                await conn.execute(f"ALTER TABLE posts ADD COLUMN IF NOT EXISTS {c['name']} {c['type']}{default}")
            await conn.execute("CREATE TEMP TABLE snap (id bigint, v boolean, m boolean) ON COMMIT DROP")
            await conn.copy_records_to_table("snap", records=snap.rows)
            await conn.execute(
                "UPDATE posts p SET has_video = s.v, has_media = s.m FROM snap s "
                "WHERE p.id = s.id AND (p.has_video IS DISTINCT FROM s.v OR p.has_media IS DISTINCT FROM s.m)"
            )
            for definition in snap.indexes:
                await conn.execute(
                    definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1).replace(
                        "CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1
                    )
                )
            await conn.execute(
                "INSERT INTO schema_migrations (version) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                snap.migrations,
            )
    finally:
        await conn.close()


# --- putting a simulation back --------------------------------------------------------------


def reset(sim: Simulation, env: str, to: State, snap: DatabaseSnapshot | None) -> None:
    """Bring the simulation back to ``to``: env files, checkout and build, database, the
    running processes. A lock is left alone (what a trial leaves there is its business)."""
    for host in sim.hosts(env):
        want = to.hosts[host.name]
        host.env_file.write_bytes(want.env_file)
        if git(host.repo, "rev-parse", "HEAD") != want.head:
            git(host.repo, "reset", "-q", "--hard", want.head)
        if host_state(host).built != want.built:
            result = sim.run(env, "rebuild_command", host.index)
            assert result.returncode == 0, result.stdout + result.stderr
        result = sim.run(env, "restart_command", host.index)
        assert result.returncode == 0, result.stdout + result.stderr
    if snap is not None:
        asyncio.run(db_reset(sim.dsn(env) or "", snap))
    now = capture(sim, env)
    problems = [p for p in now.differences(to) if not p.startswith("lock")]
    assert not problems, f"the simulation could not be put back: {problems}"


# --- one trial ----------------------------------------------------------------------------------


def armed(point: str) -> dict[str, str]:
    return {FAILPOINTS: f"{point}=kill"}


def last_run_id(journal: Journal) -> str:
    """The run the last lock intent was for: a killed CLI prints nothing reliable."""
    intents = [r for r in journal.records() if r["type"] == "lock_intent"]
    assert intents, "no lock_intent in the journal"
    return str(intents[-1]["run"])


@dataclass
class Cell:
    ok: bool
    text: str

    def __str__(self) -> str:
        return ("ok " if self.ok else "FAIL ") + self.text


@dataclass
class Outcome:
    """One row of the matrix: a crash point and what resume / check / restore / undo gave."""

    point: str
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cells.values())


def run_cli(sim: Simulation, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli(sim.config_path, *args, env=env)


def never_started(sim: Simulation, run_id: str) -> bool:
    return all(
        r["type"] in ("lock_intent", "lock_taken_over", "run_refused")
        for r in journal_of(sim).records()
        if r.get("run") == run_id
    )


def described(result: subprocess.CompletedProcess[str]) -> str:
    tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
    return f"exit {result.returncode}: " + " | ".join(tail)


# --- a scenario: one action on one simulation, every crash point -----------------------------


@dataclass
class Scenario:
    """One action on its own simulation. ``prepare`` (restore) brings the base state to
    where the action starts and returns its command; else ``command`` runs from the base."""

    name: str
    sim: Simulation
    env: str
    command: tuple[str, ...]
    plan: Callable[[Scenario], Any]  # the plan the crash points are derived from
    prepare: Callable[[Scenario], tuple[str, ...]] | None = None
    base: State | None = None
    snap: DatabaseSnapshot | None = None
    rows: list[Outcome] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    spent: dict[str, float] = field(default_factory=dict)  # seconds per CLI command, and resets
    prepared: tuple[tuple[str, ...], State] | None = None
    shard: tuple[int, int] = (0, 1)  # (k, n): this simulation takes every n-th point from the k-th

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        try:
            return run_cli(self.sim, *args, env=env)
        finally:
            self.spent[args[0]] = self.spent.get(args[0], 0.0) + time.monotonic() - started

    def capture(self) -> State:
        return capture(self.sim, self.env)

    def start(self) -> tuple[tuple[str, ...], State]:
        """The base state (reset only if the last trial did not leave it so: a passing
        trial ends where it started); then (restore) what is to be restored."""
        assert self.base is not None
        started = time.monotonic()
        now = self.capture()
        if self.prepared is not None and not now.differences(self.prepared[1]):
            self.spent["reset"] = self.spent.get("reset", 0.0) + time.monotonic() - started
            return self.prepared  # an undone restore left what it restores: restore it again
        if now.differences(self.base, exact_head=True):
            reset(self.sim, self.env, self.base, self.snap)
        self.spent["reset"] = self.spent.get("reset", 0.0) + time.monotonic() - started
        if self.prepare is None:
            return self.command, self.capture()
        command = self.prepare(self)
        self.prepared = (command, self.capture())
        return self.prepared

    def lock_ok(self, state: State, run_id: str | None = None) -> bool:
        """Free, or held by a dead console whose run never started (the next run takes it over)."""
        return not state.locked or (run_id is not None and never_started(self.sim, run_id))


def registry_check(scenario: Scenario, hits: list[str]) -> list[str]:
    """The points a real run reached are exactly the ones the registry derives from its plan."""
    from console.engine.plan import plan_points

    want = plan_points(scenario.plan(scenario))
    got = list(dict.fromkeys(h for h in hits if ":" not in h))  # phase "run" only, first hit order
    problems = []
    if set(got) != set(want):
        problems.append(
            f"reached {sorted(set(got) - set(want))} not in the registry; "
            f"registry has {sorted(set(want) - set(got))} never reached"
        )
    return problems


def verify_journal(scenario: Scenario) -> Cell:
    result = scenario.cli("history", "--verify")
    ok = result.returncode == 0 and "hash chain intact" in result.stdout + result.stderr
    return Cell(ok, "history --verify: chain intact" if ok else described(result))


def baseline(sc: Scenario, trace: Path) -> list[str]:
    """The action once, uninterrupted, with every point it reaches traced: what a trial
    after a kill must end up as. Returns registry problems (none expected)."""
    from console.failpoints import TRACE_ENV

    command, before = sc.start()
    trace.unlink(missing_ok=True)
    result = sc.cli(*command, env={TRACE_ENV: str(trace)})
    run_id = last_run_id(journal_of(sc.sim))
    sc.baseline.update(code=result.returncode, state=sc.capture(), run=run_id, before=before)
    sc.baseline["check"] = sc.cli("check", sc.env).returncode
    problems = [] if result.returncode in (0, 1) else [f"the uninterrupted run: {described(result)}"]
    return problems + registry_check(sc, trace.read_text().splitlines())


def target(sc: Scenario) -> tuple[State, bool]:
    """What a resumed run must end as, and whether HEAD must be the very same commit (a
    rollback's revert is a new commit each time; a restore puts back the original one)."""
    if sc.prepare is not None:
        assert sc.base is not None
        return sc.base, True
    return sc.baseline["state"], False


def resume_trial(sc: Scenario, row: Outcome) -> None:
    command, before = sc.start()
    killed = sc.cli(*command, env=armed(row.point))
    if killed.returncode != KILLED:
        row.cells["resume"] = Cell(False, f"not killed at the point: {described(killed)}")
        return
    journal = journal_of(sc.sim)
    run_id = last_run_id(journal)
    expected = sc.baseline["code"]
    if never_started(sc.sim, run_id):
        resumed = sc.cli("resume", run_id, "--yes")
        again = sc.cli(*command)
        final = last_run_id(journal_of(sc.sim))
        ok = resumed.returncode == 2 and "before it started" in resumed.stderr and again.returncode == expected
        text = f"never started (resume: exit {resumed.returncode}); run again: exit {again.returncode}"
    else:
        final = run_id
        finished = journal.run(run_id).outcome == "succeeded"
        resumed = sc.cli("resume", run_id, "--yes")
        if finished:
            ok = resumed.returncode == 2 and "is succeeded" in resumed.stderr
            text = "had finished: resume says so"
        else:
            ok = resumed.returncode == expected
            text = f"exit {resumed.returncode}"
        if not ok:
            text += f" ({described(resumed)})"
    want, exact = target(sc)
    now = sc.capture()
    diffs = now.differences(want, exact_head=exact)
    locked = now.locked and not (finished_run(sc, final) or never_started(sc.sim, final))
    row.cells["resume"] = Cell(
        ok and not diffs and not locked, "; ".join([text, *diffs] + (["lock left"] if locked else []))
    )
    check = sc.cli("check", sc.env)
    row.cells["check"] = Cell(check.returncode == sc.baseline["check"], f"exit {check.returncode}")
    if sc.prepare is not None:
        row.cells["restore"] = Cell(True, "n/a: a restore is not restored")
        return
    restored = sc.cli("restore", "--env", sc.env, "--run", final, "--yes")
    after = sc.capture()
    diffs = after.differences(before)
    ok = restored.returncode == 0 and not diffs and not after.locked
    row.cells["restore"] = Cell(ok, "original bytes" if ok else "; ".join([described(restored), *diffs]))


def finished_run(sc: Scenario, run_id: str) -> bool:
    from console.journal.runs import FINISHED

    try:
        return journal_of(sc.sim).run(run_id).outcome in FINISHED
    except Exception:
        return False


def undo_trial(sc: Scenario, row: Outcome) -> None:
    command, before = sc.start()
    killed = sc.cli(*command, env=armed(row.point))
    if killed.returncode != KILLED:
        row.cells["undo"] = Cell(False, f"not killed at the point: {described(killed)}")
        return
    run_id = last_run_id(journal_of(sc.sim))
    changed = bool(sc.capture().differences(before))
    undone = sc.cli("undo", run_id, "--yes")
    after = sc.capture()
    diffs = after.differences(before)
    nothing = "nothing to undo: no change was made" in undone.stdout
    problems = [*diffs]
    if undone.returncode != 0:
        problems.append(described(undone))
    if nothing == changed:
        problems.append("says nothing to undo although something changed" if nothing else "changed nothing, yet undid")
    if not sc.lock_ok(after, run_id):
        problems.append("lock left")
    text = ("nothing had changed: says so" if nothing else "every byte back") if not problems else "; ".join(problems)
    row.cells["undo"] = Cell(not problems, text)
