"""The run index read in pages: a fresh ``history`` reads the newest runs and says truly how
many older ones there are, a fresh ``report`` reads one run — right after appends by other
processes, which the index file has not seen — and both read a small part of a big journal.
Real journals through the real writer; the truth is every record read afresh (runs.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
from pathlib import Path

import pytest

from console.journal import Journal, Who
from tests.engine_support import cli
from tests.journal_support import T0, Queued, add_pending, add_run, table, truth
from tests.test_journal import dead_pid

FORK = multiprocessing.get_context("fork")


def _many(path: Path, count: int, *, first: int = 0) -> Journal:
    """``count`` runs of both environments, a drill now and then, some failed."""
    journal = Journal(path)
    queued = Queued(journal)
    for i in range(first, first + count):
        add_run(
            queued,  # type: ignore[arg-type]
            f"r-{i:05d}",
            t=T0 + 1000 * i,
            env="production" if i % 3 == 0 else "staging",
            drill=i % 7 == 3,
            outcome="failed" if i % 5 == 4 else "succeeded",
        )
    journal.flush()
    return journal


def _by_other_process(fn, *args) -> None:  # type: ignore[no-untyped-def]
    child = FORK.Process(target=fn, args=args)
    child.start()
    child.join(60)
    assert child.exitcode == 0


def _append_runs(path: str, first: int, count: int) -> None:
    _many(Path(path), count, first=first)


def _pages_are_true(path: Path, limits: tuple[int, ...] = (1, 5, 20, 1000)) -> None:
    """Every page a fresh process reads is the newest runs of the whole truth, its count true."""
    for env in (None, "staging", "production"):
        for drills in (False, True):
            want = truth(path, env, drills)
            for limit in limits:
                fresh = Journal(path)  # a new `history` process
                page = fresh.page(env, drills, limit=limit)
                assert table(page.rows) == table(want[-limit:]), (env, drills, limit)
                assert page.total == len(want) and page.older == max(0, len(want) - limit)


def test_a_fresh_page_is_the_newest_runs_right_after_appends_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    _many(path, 60).refresh()  # the index file as a console left it
    _by_other_process(_append_runs, str(path), 60, 3)  # appended since: the file has not seen them

    fresh = Journal(path)
    page = fresh.page(limit=5)
    assert [r.run_id for r in page.rows] == [r.run_id for r in truth(path)[-5:]]
    assert page.rows[-1].run_id == "r-00062"  # the newest, from another process a moment ago
    assert not fresh.index.loaded, "a page reads the index file in pages, not whole"
    _pages_are_true(path)


def test_the_older_count_stays_true_when_old_runs_change_after_the_file_was_written(tmp_path: Path) -> None:
    """Runs that change kind or appear late: a lock-only id that becomes a run, a request
    approved and started, a run a dead process left that is resumed, one started earlier."""
    path = tmp_path / "journal.jsonl"
    journal = _many(path, 30)
    add_pending(journal, "q-1", t=T0 + 500)
    ghost = Journal(path, who=Who(user="carol", ssh_client=None, host=socket.gethostname(), pid=dead_pid()))
    add_run(ghost, "g-1", t=T0 + 1500, outcome=None)
    journal.append("lock_intent", run="l-1", env="staging", data={}, ts=T0 + 2500)
    journal.refresh()
    assert Journal(path).page(limit=3).total == len(truth(path))

    journal.append("run_approved", run="q-1", env="production", data={"approver": "dave"})
    journal.append("run_started", run="l-1", env="staging", data={"action": "quick", "reason": "late"}, ts=T0 + 2501)
    journal.append("run_started", run="g-1", env="staging", data={"resumed": True, "action": "quick"})
    journal.append("run_finished", run="g-1", env="staging", data={"outcome": "succeeded", "duration_s": 1.0})
    add_run(journal, "e-1", t=T0 - 100, env="production")  # the oldest run, appended last
    _pages_are_true(path, limits=(1, 3, 31, 1000))
    fresh = Journal(path)
    want = {r.run_id: r for r in truth(path)}
    for run_id, outcome in (("l-1", "interrupted"), ("q-1", "approved"), ("g-1", "succeeded"), ("e-1", "succeeded")):
        run = fresh.run(run_id)
        assert run.outcome == want[run_id].outcome == outcome and run.records == want[run_id].records
    assert not fresh.index.loaded


def _preads_by_file(fn):  # type: ignore[no-untyped-def]
    """Run ``fn``; bytes it read with os.pread, by file name."""
    real = os.pread
    read: dict[str, int] = {}

    def counting(fd: int, n: int, offset: int) -> bytes:
        data = real(fd, n, offset)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        read[name] = read.get(name, 0) + len(data)
        return data

    os.pread = counting
    try:
        result = fn()
    finally:
        os.pread = real
    return result, read


def test_report_of_an_old_run_at_a_large_journal_reads_its_own_records(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = _many(path, 200)
    add_run(journal, "x-00007", t=T0 + 200_500)
    _many(path, 200, first=200).refresh()
    _many(path, 2, first=400)  # and a little the index file has not seen
    want = {r.run_id: r for r in truth(path)}
    old = want["r-00011"]
    own = sum(len(json.dumps(r, separators=(",", ":"), ensure_ascii=False)) + 1 for r in old.records)

    fresh = Journal(path)
    run, read = _preads_by_file(lambda: fresh.run("r-00011"))
    assert run.records == old.records and run.outcome == old.outcome == "succeeded"
    assert not fresh.index.loaded
    journal_size, index_size = path.stat().st_size, (tmp_path / "journal.jsonl.index").stat().st_size
    assert read["journal.jsonl"] < own + 20_000 < journal_size / 10, "its own lines and what is new"
    assert read["journal.jsonl.index"] < index_size / 4, "the ids' table searched, not the file read"

    assert Journal(path).run("r-00401").records == want["r-00401"].records  # appended after the file
    assert Journal(path).run("x-00").run_id == "x-00007"  # a unique prefix, of a run in the file
    for prefix in ("r-0039", "r-0040"):  # among runs of the file, among runs appended since
        with pytest.raises(Exception, match="ambiguous"):
            Journal(path).run(prefix)
    with pytest.raises(Exception, match="no run"):
        Journal(path).run("r-9")


def test_a_page_reads_its_runs_not_the_index_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    _many(path, 400).refresh()
    page, read = _preads_by_file(lambda: Journal(path).page(limit=20))
    assert table(page.rows) == table(truth(path)[-20:]) and page.older == len(truth(path)) - 20
    assert read["journal.jsonl.index"] < (tmp_path / "journal.jsonl.index").stat().st_size / 4
    assert read.get("journal.jsonl", 0) < 4096, "finished runs' rows are in the file: the journal is only checked"


def test_history_shows_the_latest_runs_and_says_how_many_older(make_simulation) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulation()
    path = sim.directory / "journal.jsonl"
    _many(path, 45).refresh()
    _by_other_process(_append_runs, str(path), 45, 2)
    real = truth(path)  # 40 real runs (7 drills among 47)

    text = cli(sim.config_path, "history").stdout
    shown = [r.run_id for r in real if r.run_id in text]
    assert shown == [r.run_id for r in real[-20:]]
    assert f"{len(real) - 20} older runs not shown: `rollback-console history --all`" in text
    everything = cli(sim.config_path, "history", "--all").stdout
    assert all(r.run_id in everything for r in real) and "older" not in everything
    three = cli(sim.config_path, "history", "--limit", "3", "--env", "staging").stdout
    staging = truth(path, "staging")
    assert [r.run_id for r in staging if r.run_id in three] == [r.run_id for r in staging[-3:]]
    assert f"{len(staging) - 3} older runs of staging not shown" in three
    assert len(json.loads(cli(sim.config_path, "history", "--json").stdout)) == len(real)  # scripts: every run
    markdown = cli(sim.config_path, "history", "--markdown")
    assert len(markdown.stdout.strip().splitlines()) == 2 + 20 and f"{len(real) - 20} older runs" in markdown.stderr
    report = cli(sim.config_path, "report", "r-00012").stdout
    assert "r-00012" in report
    assert cli(sim.config_path, "history", "--limit", "0").returncode != 0
