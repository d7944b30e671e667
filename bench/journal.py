"""Benchmark: the audit journal at 100, 10,000 and 100,000 records, before and after.

    .venv/bin/python bench/journal.py --before /tmp/b-before        # a checkout of f8a0d0e
    .venv/bin/python bench/journal.py --before DIR --sizes 100,10000 --repeat 5

Builds one journal per size through the real writer (this checkout's): realistic runs —
lock_intent, run_started with the plan and its previews, per step step_started,
step_intent, step_finished with facts and output, the five validations, run_finished,
automatic checklist ticks, a notification — some failed and skipped, some waiting for
approval then approved, drills with their scorecards, two environments, years of them.

Then, for each checkout (``--before`` and this one), on its own copy of each journal (no
index or checkpoint left from the other), times what the console does with it, each in
that checkout's own code (a fresh interpreter with the checkout first on sys.path):

- history CLI: ``rollback-console history`` as a fresh process (first run, then steady) —
  since the index is read in pages, the latest 20 runs and how many older ones there are;
- report CLI: ``rollback-console report RUN`` as a fresh process;
- History screen: the data path of opening it — the runs (a page of the newest 50, where
  the checkout has pages; else every row), the chain check, the table's rows — in a
  long-lived process like the console's (first open, then reopened with one more run in
  the journal);
- focused-view round: what the focused view reads from the journal each probe round
  (the environment's latest run), with nothing new (each sample 20 rounds, per round: one
  round is ≈ 0.3 ms, most of it a thread hop), and with one more run appended;
- report (in process): the run, the chain check, the report's markdown (10 to a sample);
- run index: the first build, and bringing it up to date after one more run;
- verify: the whole chain, and after one more run (incremental, where there is one).

Each figure is printed in milliseconds and as a multiple of its 100-record time, the
before beside the after; then one line per goal. Medians of ``--repeat`` runs, and of
``--rounds`` passes over every size (the order rotating, so drift hits every size alike). The
machine is shared and noisy: compare figures of one run only. The goals' figures are also
printed as CPU time (user + system, every thread; of the child for a command), and the
goals are judged on it: under the load of other work on two cores, the wall time of a
100 ms command or a 2 ms read is mostly waiting for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
CPU: list[float] = []  # CPU ms of each thing timed, in order: what load on a shared machine cannot inflate
T_START = 1_640_995_200.0  # 2022-01-01: years of runs

CONFIG = """
[console]
journal = "{dir}/journal.jsonl"

[environments.staging]
kind = "staging"
hosts = ["local"]
api_url = "http://127.0.0.1:9"
channel_id = -1001234567890
login_email = "ops-probe@analyticbot.example"
password = {{ file = "{dir}/password" }}
env_file = "{dir}/staging.env"
restart_command = "true"
pid_command = "echo 4242"
lock_dir = "{dir}"
log_file = "{dir}/staging.log"

[environments.production]
kind = "production"
hosts = ["local"]
api_url = "http://127.0.0.1:9"
channel_id = -1001234567890
login_email = "ops-probe@analyticbot.example"
password = {{ file = "{dir}/password" }}
env_file = "{dir}/production.env"
restart_command = "true"
pid_command = "echo 4343"
lock_dir = "{dir}"
log_file = "{dir}/production.log"
"""

FLAGS = ("ENABLE_ADVANCED_RECOMMENDATIONS", "ENABLE_TIME_WEIGHTING", "ENABLE_CONTENT_TYPE_ANALYSIS")
STEPS = (
    ("edit-env", "Edit the env file: all three Phase 4 flags off"),
    ("restart", "Restart the API"),
    ("await-effect", "Wait until the process and the log show the new flags"),
    ("validate", "Validate (the runbook's five checks)"),
)
SCREEN_PAGE = 50  # screens/history.py's PAGE (not imported: that loads Textual)
CHECKS = ("health", "flags_in_logs", "no_errors", "response_time", "recommendations")


# --- building journals ------------------------------------------------------------------------
def run_records(rng: random.Random, n: int, t: float) -> list[tuple[str, dict[str, Any]]]:
    """One run's records as the engine writes them: (type, append kwargs)."""
    env = "production" if n % 3 == 0 else "staging"
    run = f"r-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(t))}-{n:05x}"
    drill = n % 25 == 7
    pending = not drill and n % 30 == 11
    failed = not drill and n % 10 == 3
    out: list[tuple[str, dict[str, Any]]] = []

    def add(kind: str, dt: float, **data: Any) -> None:
        out.append((kind, {"run": run, "env": env, "data": data, "ts": t + dt}))

    plan = {
        "title": "Quick rollback: disable all advanced features",
        "target": "< 1 min",
        "target_s": 60,
        "data_loss": "None",
        "reversible": "Yes (re-enable flags)",
        "options": {},
        "steps": [
            {
                "id": sid,
                "title": title,
                "scope": "host" if sid != "validate" else "environment",
                "preview": "\n".join(f"[web1]\n-{f}=true\n+{f}=false" for f in FLAGS) if sid == "edit-env" else title,
            }
            for sid, title in STEPS
        ],
        "preview_digest": f"{rng.getrandbits(256):064x}",
    }
    if drill:
        out.append(("drill_started", {"env": env, "data": {"scenario": "latency", "secret": False}, "ts": t - 5}))
    if pending:
        add("run_requested", -600, action="quick", reason="p95 > 5s for 10 min", requester="bob", plan=plan)
        add("run_approved", -60, approver="carol")
    add("lock_intent", 0, action="quick", resume=False, undo=False, lock=f"/srv/analyticbot/{env}.lock")
    add(
        "run_started",
        0.4,
        action="quick",
        options={},
        reason=rng.choice(("p95 latency above 5s", "errors after the Phase 4 deploy", "memory > 1GB")),
        authorization={"mode": "approved" if pending else "self-service", "approver": "carol" if pending else None},
        drill=drill,
        resumed=False,
        undo=False,
        plan=plan,
        recommendation={"action": "quick", "severity": "critical", "lit": ["response_time_s"], "why": "p95 6.2s"},
        evidence=[],
    )
    clock = 1.0
    for sid, title in STEPS:
        add("step_started", clock, step=sid, host="web1", title=title, phase="run", message=title)
        if sid in ("edit-env", "restart"):
            before = {f: "true" for f in FLAGS}
            intent = {"before": before, "sha256": f"{rng.getrandbits(256):064x}", "path": "/srv/analyticbot/.env"}
            add("step_intent", clock + 0.01, step=sid, host="web1", phase="run", intent=intent)
        clock += rng.uniform(0.5, 8.0)
        if failed and sid == "restart":
            add("step_failed", clock, step=sid, host="web1", phase="run", message="the API did not come back",
                output="Job for analyticbot-api.service failed.\n" * 4, troubleshooting="Issue 2")  # fmt: skip
            add("decision", clock + 20, step=sid, decision="skip", reason="known flaky health check", phase="run")
        else:
            facts = {"changed": True, "backup": "/srv/analyticbot/.env.bak", "flags": {f: False for f in FLAGS}}
            add("step_finished", clock, step=sid, host="web1", phase="run", elapsed_s=round(clock, 3), facts=facts,
                output=f"{title}: ok\n" + "INFO uvicorn running on 0.0.0.0:10300\n" * 3, message="ok")  # fmt: skip
    for check in CHECKS:
        add("validation", clock, check=check, ok=True, detail=f"{check}: within thresholds")
    add("run_finished", clock + 0.2, outcome="succeeded", duration_s=round(clock, 3), message="done",
        failed_hosts=[], not_started=[], target_s=60)  # fmt: skip
    for item in ("health", "flags", "errors", "latency", "recommendations"):
        add("checklist", clock + 1, item=item, ticked=True, by="auto", evidence=f"{item} ok")
    add("notified", clock + 2, event="run_finished", ok=True, target="webhook")
    if drill:
        out.append(("drill_scored", {"env": env, "data": {"scenario": "latency", "score": 80}, "ts": t + clock + 60}))
    return out


def build(path: Path, records: int) -> str:
    """Write about ``records`` records through the real writer; the last run's id."""
    from console.journal import Journal

    journal = Journal(path)
    rng = random.Random(records)
    t, n, written, last, futures = T_START, 0, 0, "", []
    while written < records:
        for kind, kw in run_records(rng, n, t):
            futures.append(journal.submit(kind, **kw))
            written += 1
            last = kw.get("run") or last
        n += 1
        t += rng.uniform(3600, 20 * 3600)
        if len(futures) > 4096:
            for f in futures:
                f.result()
            futures = []
    journal.flush()
    for f in futures:
        f.result()
    return last


def append_one_run(path: Path, n: int) -> None:
    """One more run, appended by the checkout being measured (its own writer)."""
    from console.journal import Journal

    journal = Journal(path)
    for kind, kw in run_records(random.Random(n), n, time.time() - 3600):
        journal.append(kind, **kw)


# --- measuring, inside a checkout ----------------------------------------------------------------
def measure(directory: Path, run_id: str, repeat: int) -> dict[str, Any]:
    """The in-process figures, with whatever checkout is first on sys.path."""
    from console.journal import Journal, history_rows, incident_report

    path = directory / "journal.jsonl"
    new_api = hasattr(Journal, "rows")
    out: dict[str, Any] = {"new_api": new_api}
    bump = iter(range(10_000_000, 20_000_000))

    def timed_each(fn: Any, n: int) -> float:
        """Wall ms per call of ``n`` calls timed together (CPU ms per call kept in ``CPU``):
        a sub-millisecond call's own time is mostly the thread hop's and the scheduler's jitter."""
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        CPU.append((time.process_time() - cpu_started) * 1000 / n)  # every thread's: the readers run in threads
        return (time.perf_counter() - started) * 1000 / n

    def timed(fn: Any) -> float:
        return timed_each(fn, 1)

    def figure(key: str, fn: Any, times: int) -> None:
        """Medians of ``times`` calls of ``fn`` (which times one thing): wall and CPU ms."""
        mark = len(CPU)
        out[key] = statistics.median(fn() for _ in range(times))
        out[key + "_cpu"] = statistics.median(CPU[mark:])

    loop = asyncio.new_event_loop()
    run = loop.run_until_complete

    # The run index: first build, then one more run.
    if new_api:
        out["index_first"] = timed(lambda: Journal(path).refresh())
        j = Journal(path)
        j.refresh()

        def index_again() -> float:
            append_one_run(path, next(bump))
            return timed(j.refresh)
    else:
        from console.journal.runs import summarize

        out["index_first"] = timed(lambda: summarize(Journal(path).records()))
        j = Journal(path)
        summarize(j.records())

        def index_again() -> float:
            append_one_run(path, next(bump))
            return timed(lambda: summarize(j.records()))

    figure("index_append", index_again, repeat)

    # The History screen's data path, in a console that stays open.
    app = Journal(path)

    paged = hasattr(Journal, "page_async")  # the screen holds a page of the newest runs

    def open_history() -> None:
        if paged:
            rows = run(app.page_async(drills=False, limit=SCREEN_PAGE)).rows
            problems = run(app.verify_async())
        elif new_api:
            rows = run(app.rows_async(drills=False))
            problems = run(app.verify_async())
        else:
            rows = app.runs(drills=False)
            problems = app.verify()
        history_rows(list(reversed(rows)))
        assert not problems, problems

    out["history_first"] = timed(open_history)
    figure("history_steady", lambda: timed(open_history), repeat)

    def history_after_append() -> float:
        append_one_run(path, next(bump))
        return timed(open_history)

    figure("history_append", history_after_append, repeat)

    # A focused view's probe round: the environment's latest run.
    def round_() -> None:
        if new_api:
            run(app.latest_async("staging", drills=False))
        else:
            app.runs("staging", drills=False)[-1]

    figure("round_steady", lambda: timed_each(round_, 20), repeat * 5)

    def round_after_append() -> float:
        append_one_run(path, next(bump))
        return timed(round_)

    # One round per append (the append is what it reads): more samples instead.
    figure("round_append", round_after_append, repeat * 10)

    # A report, in process.
    def report() -> None:
        if new_api:
            r = run(app.run_async(run_id))
            incident_report(r, problems=run(app.verify_async()))
        else:
            incident_report(app.run(run_id), problems=app.verify())

    figure("report_steady", lambda: timed_each(report, 10), repeat)  # ≈ 2 ms each: batched too

    # Verify: the whole chain; then one more run appended and verified.
    out["verify_full"] = statistics.median(timed(lambda: Journal(path).verify()) for _ in range(max(3, repeat // 2)))
    sizes = []

    def verify_after_append() -> float:
        append_one_run(path, next(bump))
        size = path.stat().st_size
        if new_api:
            started = time.perf_counter()
            result = app.verify_checkpointed()
            took = (time.perf_counter() - started) * 1000
            sizes.append(result.bytes_read)
        else:
            took = timed(app.verify)
            sizes.append(size)
        return took

    if new_api:
        app.verify_checkpointed()
    out["verify_append"] = statistics.median(verify_after_append() for _ in range(repeat))
    out["verify_append_bytes"] = statistics.median(sizes)
    loop.close()
    return out


# --- driving it ----------------------------------------------------------------------------------
def child_env(checkout: Path, pycache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(checkout)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cache bytecode, as an install does
    env["PYTHONPYCACHEPREFIX"] = str(pycache / checkout.name)
    return env


def cli_ms(checkout: Path, pycache: Path, config: Path, *args: str) -> float:
    """Wall ms of the command; its CPU ms (user + system) go to CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(config), *args],
        env=child_env(checkout, pycache),
        capture_output=True,
        text=True,
        cwd=checkout,
    )
    took = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
    if result.returncode != 0:
        raise SystemExit(f"{checkout}: {' '.join(args)} exited {result.returncode}: {result.stderr[-500:]}")
    return took


def prepare(src: Path, where: Path) -> Path:
    """A copy of the journal with a config beside it, and no index or checkpoint."""
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    shutil.copy(src, where / "journal.jsonl")
    (where / "password").write_text("x\n")
    for env in ("staging", "production"):
        (where / f"{env}.env").write_text("".join(f"{f}=false\n" for f in FLAGS))
        (where / f"{env}.log").write_text("")
    (where / "console.toml").write_text(CONFIG.format(dir=where))
    return where / "console.toml"


def figures(checkout: Path, src: Path, where: Path, run_id: str, repeat: int, pycache: Path) -> dict[str, Any]:
    config = prepare(src, where)
    out: dict[str, Any] = {}
    out["cli_history_first"] = cli_ms(checkout, pycache, config, "history")
    mark = len(CPU)
    out["cli_history"] = statistics.median(cli_ms(checkout, pycache, config, "history") for _ in range(repeat))
    out["cli_history_cpu"] = statistics.median(CPU[mark:])
    out["cli_report_first"] = cli_ms(checkout, pycache, config, "report", run_id)
    mark = len(CPU)
    out["cli_report"] = statistics.median(cli_ms(checkout, pycache, config, "report", run_id) for _ in range(repeat))
    out["cli_report_cpu"] = statistics.median(CPU[mark:])
    config = prepare(src, where)  # in-process figures start from a journal with nothing beside it
    script = f"import json,sys; sys.path.insert(0, {str(HERE / 'bench')!r}); import journal as b; " + (
        f"print(json.dumps(b.measure(__import__('pathlib').Path({str(where)!r}), {run_id!r}, {repeat})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=child_env(checkout, pycache), capture_output=True, text=True, cwd=checkout
    )
    if result.returncode != 0:
        raise SystemExit(f"{checkout}: measuring failed:\n{result.stderr[-2000:]}")
    out.update(json.loads(result.stdout.strip().splitlines()[-1]))
    return out


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (flags such as ``new_api`` are the same in all)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        numbers = [r[key] for r in runs if key in r]
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        out[key] = statistics.median(numbers) if is_number else value
    return out


ROWS = (
    ("cli_history", "history CLI (fresh process)"),
    ("cli_history_cpu", "  its CPU time"),
    ("cli_history_first", "  its first run (builds the index)"),
    ("cli_report", "report CLI (fresh process)"),
    ("cli_report_cpu", "  its CPU time"),
    ("cli_report_first", "  its first run (verifies it all)"),
    ("history_steady", "History screen: reopened"),
    ("history_append", "History screen: one more run"),
    ("history_append_cpu", "  its CPU time"),
    ("history_first", "History screen: first open"),
    ("round_steady", "focused-view round"),
    ("round_steady_cpu", "  its CPU time"),
    ("round_append", "focused-view round, one more run"),
    ("round_append_cpu", "  its CPU time"),
    ("report_steady", "report (in process)"),
    ("report_steady_cpu", "  its CPU time"),
    ("index_first", "run index: first build"),
    ("index_append", "run index: one more run"),
    ("verify_full", "verify: whole chain"),
    ("verify_append", "verify after one more run"),
    ("verify_append_bytes", "  bytes it read (KB)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="a checkout of the commit to compare with (e.g. f8a0d0e)")
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--rounds", type=int, default=5, help="passes over every size, in a rotating order; medians (default 5)"
    )
    parser.add_argument("--work", type=Path, help="keep the journals here (built once, reused)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-journal-"))
    work.mkdir(parents=True, exist_ok=True)
    pycache = work / "pycache"
    checkouts = {"after": HERE}
    if args.before:
        checkouts = {"before": args.before.resolve(), "after": HERE}
    sys.path.insert(0, str(HERE))

    built: dict[int, tuple[Path, str]] = {}
    for size in sizes:
        src = work / f"src-{size}" / "journal.jsonl"
        meta = src.with_suffix(".run")
        if not (src.exists() and meta.exists()):
            shutil.rmtree(src.parent, ignore_errors=True)
            started = time.perf_counter()
            last = build(src, size)
            meta.write_text(last)
            print(f"built {size} records ({src.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s")
        built[size] = (src, meta.read_text())
        for f in src.parent.glob("journal.jsonl.*"):
            f.unlink()  # the builder's own index: not a checkout's

    # Every size is measured in every round, the order rotating: the goals are ratios between
    # sizes, and a machine whose speed drifts between one size's pass and the next's would
    # otherwise move them (the in-process figures are a few milliseconds).
    samples: dict[str, dict[int, list[dict[str, Any]]]] = {name: {size: [] for size in sizes} for name in checkouts}
    for r in range(args.rounds):
        for i, size in enumerate(sizes[r % len(sizes) :] + sizes[: r % len(sizes)]):
            src, run_id = built[size]
            order = list(checkouts.items())
            for name, checkout in order if (r + i) % 2 == 0 else reversed(order):  # who goes first alternates
                started = time.perf_counter()
                samples[name][size].append(
                    figures(checkout, src, work / f"{name}-{size}", run_id, args.repeat, pycache)
                )
                took = time.perf_counter() - started
                print(f"round {r + 1}: measured {name} at {size} records in {took:.0f}s", flush=True)
    results = {name: {size: medians(runs) for size, runs in by_size.items()} for name, by_size in samples.items()}

    print(f"\n{'figure':<36} {'records':>8}", end="")
    for name in checkouts:
        print(f" {name + ' ms':>12} {'×100':>7}", end="")
    print()
    for key, label in ROWS:
        for size in sizes:
            print(f"{label if size == sizes[0] else '':<36} {size:>8}", end="")
            for name in checkouts:
                value = results[name][size].get(key)
                base = results[name][sizes[0]].get(key)
                if value is None:
                    print(f" {'-':>12} {'':>7}", end="")
                    continue
                shown = value / 1024 if key.endswith("bytes") else value
                ratio = value / base if base else float("nan")
                print(f" {shown:>12.1f} {ratio:>6.2f}×", end="")
            print()

    after, lo, hi = results["after"], sizes[0], sizes[-1]

    def goal(name: str, key: str, target: float = 1.2) -> None:
        value = after[hi][key] / after[lo][key]
        print(f"goal {name}: {value:.2f} (target ≤ {target}) {'met' if value <= target else 'MISSED'}")

    print()
    # CPU time: on a shared 2-core machine the wall time of a 100 ms process is mostly the
    # load's (the wall figures are above, for the record).
    goal(f"history CLI at {hi} vs {lo} records (CPU)", "cli_history_cpu")
    goal(f"History screen (reopened, one more run) at {hi} vs {lo} (CPU)", "history_append_cpu")
    goal(f"report CLI at {hi} vs {lo} (CPU)", "cli_report_cpu")
    goal(f"report in process at {hi} vs {lo} (CPU)", "report_steady_cpu")
    goal(f"focused-view round at {hi} vs {lo} (CPU)", "round_steady_cpu")
    goal(f"focused-view round after one more run at {hi} vs {lo} (CPU)", "round_append_cpu")
    goal(f"verify after one more run: bytes read at {hi} vs {lo}", "verify_append_bytes")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
