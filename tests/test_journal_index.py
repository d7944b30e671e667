"""The run index: the same runs as a reader of the whole file sees, after appends (also by
another process), crashes mid-append, truncation, replacement, bad lines and a damaged or
foreign index file — while reading only what is new."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console import failpoints
from console.journal import Journal, JournalError, Who, history_json, history_text, pages
from console.journal import index as index_module
from tests.journal_support import T0, add_pending, add_run, rewrite_in_place, table, truth
from tests.test_journal import dead_pid

FORK = multiprocessing.get_context("fork")


def mixed(path: Path) -> Journal:
    """Runs of every shape: finished, failed, skipped, pending approval, drills, another
    environment, a run a dead process left behind, and a run that never started."""
    journal = Journal(path)
    add_run(journal, "r-1", t=T0)
    add_run(journal, "r-2", t=T0 + 100, outcome="failed")
    add_run(journal, "r-3", t=T0 + 200, outcome="failed", skip=True, env="production")
    add_pending(journal, "r-4", t=T0 + 300)
    add_run(journal, "d-1", t=T0 + 400, drill=True)
    ghost = Journal(path, who=Who(user="carol", ssh_client=None, host=socket.gethostname(), pid=dead_pid()))
    add_run(ghost, "r-5", t=T0 + 500, outcome=None)
    journal.append("lock_intent", run="r-6", env="staging", data={})  # killed before it started: no run
    journal.append("run_refused", run="r-6", env="staging", data={"why": "locked"})
    journal.append("notified", env="staging", data={"escalation_level": 2})  # no run
    return journal


def same_as_truth(journal: Journal) -> None:
    for env in (None, "staging", "production"):
        for drills in (False, True):
            want = truth(journal.path, env, drills)
            assert table(journal.rows(env, drills)) == table(want)
            assert table(journal.runs(env, drills)) == table(want)
            assert [r.records for r in journal.runs(env, drills)] == [r.records for r in want]
    assert history_text(journal.rows()) == history_text(truth(journal.path))
    assert history_json(journal.rows()) == history_json(truth(journal.path))


def test_rows_and_runs_are_what_a_full_read_gives_after_every_append(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    same_as_truth(journal)
    assert {r.run_id: r.outcome for r in journal.rows()} == {
        "r-1": "succeeded",
        "r-2": "failed",
        "r-3": "succeeded",
        "r-4": "pending",
        "r-5": "interrupted",
    }
    # Runs change after the fact: approved, resumed and finished, ticked.
    journal.append("run_approved", run="r-4", env="production", data={"approver": "dave"})
    same_as_truth(journal)
    journal.append("run_started", run="r-5", env="staging", data={"resumed": True, "action": "quick"})
    assert journal.run("r-5").outcome == "running"  # this process resumed it
    same_as_truth(journal)
    journal.append("run_finished", run="r-5", env="staging", data={"outcome": "succeeded", "duration_s": 1.0})
    add_run(journal, "r-7", t=T0 + 50)  # started earlier than later runs: ordered by start
    same_as_truth(journal)
    assert journal.latest("staging").run_id == "r-5"
    assert [r.run_id for r in journal.interrupted()] == []


def test_a_fresh_process_starts_from_the_index_file_and_reads_only_what_is_new(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    first = mixed(path)
    same_as_truth(first)
    assert first.index.file.exists()

    later = Journal(path)  # as `history` in a new process: the file, then the journal's tail
    later.index.refresh()
    assert later.index.offset == path.stat().st_size
    add_run(first, "r-8", t=T0 + 900)

    reads = []
    real_pread = os.pread

    def counting(fd: int, n: int, offset: int) -> bytes:
        data = real_pread(fd, n, offset)
        reads.append(len(data))
        return data

    before = path.stat().st_size
    add_run(first, "r-9", t=T0 + 1000)
    new = path.stat().st_size - before
    later.index.refresh()  # catches up r-8 and r-9
    add_run(first, "r-10", t=T0 + 1100)
    grown = path.stat().st_size - before - new
    index_module.os.pread = counting  # type: ignore[attr-defined]
    try:
        later.index.refresh()
    finally:
        index_module.os.pread = real_pread  # type: ignore[attr-defined]
    head, tail = later.index.head[0], 2048  # the checks of the first and last line read so far
    assert sum(reads) <= grown + head + tail, "an append costs what was appended, not the journal"
    same_as_truth(later)


def _append_runs(path: str, first: int, count: int) -> None:
    journal = Journal(path)
    for i in range(first, first + count):
        add_run(journal, f"p-{i}", t=T0 + 10_000 + i)


def test_appends_by_another_process_show_up(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    assert len(journal.rows()) == 5
    other = FORK.Process(target=_append_runs, args=(str(path), 0, 3))
    other.start()
    other.join(30)
    assert other.exitcode == 0
    assert [r.run_id for r in journal.rows()][-3:] == ["p-0", "p-1", "p-2"]
    same_as_truth(journal)


def test_a_torn_last_line_waits_and_then_is_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    lines = len(path.read_bytes().splitlines())
    with open(path, "ab") as f:  # a crash in the middle of writing a record of r-1
        f.write(b'{"seq":999,"ts":"2025-11-24T00:00:00Z","type":"note","run":"r-1"')
    same_as_truth(journal)
    assert journal.bad_lines == []  # not a line yet: its newline may still come

    add_run(journal, "r-11", t=T0 + 2000)  # the next append starts a fresh line after the torn bytes
    same_as_truth(journal)
    assert journal.bad_lines == [lines + 1]
    assert Journal(path).rows()[-1].run_id == "r-11"


ROOT = Path(__file__).resolve().parents[1]
# One record, appended by a process armed to die half-way through writing it.
KILLED_MID_APPEND = """
import sys
from pathlib import Path
from console.journal import Journal
Journal(Path(sys.argv[1])).append("run_approved", run="r-4", env="production", data={"approver": "eve"})
"""


def test_a_writer_killed_mid_append_leaves_a_torn_line_the_index_steps_over(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    same_as_truth(journal)
    lines, size = len(path.read_bytes().splitlines()), path.stat().st_size
    result = subprocess.run(
        [sys.executable, "-c", KILLED_MID_APPEND, str(path)],
        env={**os.environ, failpoints.ENV: "journal/mid-append=kill"},
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    data = path.read_bytes()
    assert len(data) > size and not data.endswith(b"\n")  # half a record, as the crash left it
    same_as_truth(journal)
    assert journal.run("r-4").outcome == "pending"  # the approval never reached the disk whole
    assert journal.bad_lines == [] and journal.index.rebuilds == 0

    add_run(journal, "r-12", t=T0 + 3000)  # the next append starts on a fresh line
    same_as_truth(journal)
    assert journal.bad_lines == [lines + 1] and journal.index.rebuilds == 0
    fresh = Journal(path)  # a new process, from the index file
    same_as_truth(fresh)
    assert fresh.bad_lines == [lines + 1] and fresh.index.rebuilds == 0


def _submit_runs_forever(path: str, first: int) -> None:
    """Whole runs, each submitted at once (so a batch holds several records), until killed."""
    journal = Journal(path)
    for i in range(first, first + 100_000):
        run, t = f"k-{i}", T0 + 20_000 + i
        futures = [
            journal.submit("lock_intent", run=run, env="staging", data={"action": "quick"}, ts=t),
            journal.submit("run_started", run=run, env="staging", data={"action": "quick", "reason": "x" * (i % 700)}),
            journal.submit("step_started", run=run, env="staging", data={"step": "edit-env", "phase": "run"}),
            journal.submit("run_finished", run=run, env="staging", data={"outcome": "succeeded", "duration_s": 1.0}),
        ]
        for future in futures:
            future.result()


def test_the_index_stays_true_while_writers_are_killed_at_random_moments(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    same_as_truth(journal)
    rng = random.Random(12)
    for round_ in range(6):
        size = path.stat().st_size
        child = FORK.Process(target=_submit_runs_forever, args=(str(path), round_ * 100_000))
        child.start()
        deadline = time.monotonic() + 60  # a hang guard
        while path.stat().st_size == size and time.monotonic() < deadline:
            journal.refresh()  # reading while another process appends
        for _ in range(rng.randrange(0, 40)):
            journal.refresh()
        os.kill(child.pid, signal.SIGKILL)  # wherever it is: between records, mid-batch, mid-write
        child.join(30)
        assert child.exitcode == -signal.SIGKILL
        assert path.stat().st_size > size
        same_as_truth(journal)
        assert journal.index.rebuilds == 0
    same_as_truth(Journal(path))  # a new process, from the index file


def test_truncating_the_journal_starts_the_index_over(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    same_as_truth(journal)
    data = path.read_bytes()
    cut = data.index(b'"run":"r-3"')
    cut = data.rindex(b"\n", 0, cut) + 1  # at a line boundary: r-1 and r-2 stay
    rewrite_in_place(path, data[:cut])
    assert [r.run_id for r in journal.rows()] == ["r-1", "r-2"]
    same_as_truth(journal)
    assert journal.index.rebuilds == 1


def test_rewriting_the_journal_in_place_to_a_longer_one_starts_over(tmp_path: Path) -> None:
    """Same inode, longer than what was indexed, other records: the first and last line
    indexed no longer match, so the index does not trust its offsets."""
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    same_as_truth(journal)
    other_path = tmp_path / "other.jsonl"
    other = Journal(other_path)
    for i in range(12):
        add_run(other, f"o-{i}", t=T0 + i)
    assert other_path.stat().st_size > path.stat().st_size
    rewrite_in_place(path, other_path.read_bytes())
    assert [r.run_id for r in journal.rows()] == [f"o-{i}" for i in range(12)]
    same_as_truth(journal)


def test_replacing_the_journal_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    same_as_truth(journal)
    other_path = tmp_path / "other.jsonl"
    add_run(Journal(other_path), "o-1")
    os.replace(other_path, path)
    assert [r.run_id for r in journal.rows()] == ["o-1"]
    same_as_truth(journal)
    assert [r.run_id for r in Journal(path).rows()] == ["o-1"]  # the index file is not believed either

    path.unlink()
    assert journal.rows() == []


def test_bad_lines_are_skipped_and_said_where(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    add_run(journal, "r-1")
    with open(path, "ab") as f:
        f.write(b"garbage\n" + b"[" * 100_000 + b"\n" + b'{"seq": 1}\n')
    add_run(journal, "r-2", t=T0 + 10)
    n = len(truth(path)[0].records)
    same_as_truth(journal)
    assert journal.bad_lines == [n + 1, n + 2, n + 3]
    assert Journal(path).bad_lines == []  # not read yet
    fresh = Journal(path)
    fresh.refresh()
    assert fresh.bad_lines == [n + 1, n + 2, n + 3]  # from the index file


@pytest.mark.parametrize(
    "damage",
    [
        "garbage",
        "truncated",
        "another format",
        "the older format",
        "spans of another run",
        "offset beyond the journal",
        "a damaged table of ids",
        "a directory",
    ],
)
def test_a_damaged_index_file_costs_a_rebuild_never_a_wrong_answer(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    same_as_truth(journal)
    index_file = journal.index.file
    text = index_file.read_bytes()
    index = journal.index
    if damage == "garbage":
        index_file.write_bytes(b"\x00not json")
    elif damage == "truncated":
        index_file.write_bytes(text[: len(text) // 2])
    elif damage == "another format":
        index_file.write_bytes(text.replace(b"rollback-console run index", b"something else", 1))
    elif damage == "the older format":  # one JSON object, as version 1 wrote it
        index_file.write_text(json.dumps({"format": "rollback-console run index", "version": 1, "runs": {}}))
    elif damage == "spans of another run":  # a well-formed file that points at other lines
        index.runs["r-1"].spans, index.runs["r-2"].spans = index.runs["r-2"].spans, index.runs["r-1"].spans
        index_file.write_bytes(pages.encode(index))
    elif damage == "offset beyond the journal":
        index.offset = path.stat().st_size + 10
        index_file.write_bytes(pages.encode(index))
    elif damage == "a damaged table of ids":
        at = text.index(b"\n000000000")
        index_file.write_bytes(text[: at + 1] + b"x" + text[at + 2 :])
    else:
        index_file.unlink()
        index_file.mkdir()
    fresh = Journal(path)  # a fresh `report`: the run from the file read in pages, else the whole index
    assert fresh.run("r-1").records == truth(path)[0].records
    for limit in (1, 3, 100):  # a fresh `history`
        fresh = Journal(path)
        page = fresh.page(limit=limit)
        assert table(page.rows) == table(truth(path)[-limit:]) and page.total == len(truth(path))
    fresh = Journal(path)
    same_as_truth(fresh)
    assert fresh.run("r-1").records == truth(path)[0].records


def test_the_index_file_is_shared_by_the_group_and_never_half_written(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.jsonl"
    journal = mixed(path)
    journal.refresh()
    journal.verify_checkpointed()
    for sidecar in (journal.index.file, path.with_name(path.name + ".verified")):
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o660, sidecar
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o2770
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "journal.jsonl",
        "journal.jsonl.index",
        "journal.jsonl.verified",
    ]  # no temporary file left


def test_a_journal_that_cannot_be_read_is_said_so(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    os.mkfifo(path)
    with pytest.raises(JournalError) as err:
        Journal(path).rows()
    assert "named pipe" in str(err.value)


def test_one_run_reads_only_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = mixed(path)
    journal.refresh()
    spans = list(journal.index.runs["r-3"].spans)
    run = Journal(path).run("r-3")
    assert [r["run"] for r in run.records] == ["r-3"] * len(run.records)
    assert len(spans) == 2 * len(run.records)
    assert journal.run_records("r-6") == [r for r in run_records(path) if r.get("run") == "r-6"]
    assert [r["type"] for r in journal.loose_records("notified")] == ["notified"]


def run_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]
