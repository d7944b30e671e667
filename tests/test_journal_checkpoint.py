"""The verify checkpoint: later verifies read only what is new, and a prefix that was forged,
cut short or replaced is still caught — the checkpoint is itself checked against the chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.journal import Journal
from console.journal.checkpoint import checkpoint_path
from tests.journal_support import T0, add_run, forge, rewrite_in_place


def verified(tmp_path: Path, runs: int = 3) -> Journal:
    """A journal verified once (the checkpoint at its end)."""
    journal = Journal(tmp_path / "journal.jsonl")
    for i in range(runs):
        add_run(journal, f"r-{i}", t=T0 + 100 * i)
    first = journal.verify_checkpointed()
    assert first == [] and first.full and checkpoint_path(journal.path).exists()
    return journal


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_a_later_verify_reads_only_what_was_appended(tmp_path: Path) -> None:
    journal = verified(tmp_path)
    size = journal.path.stat().st_size
    n = len(lines(journal.path))
    record = journal.append("note", run="r-9", data={"message": "one more"})
    new = journal.path.stat().st_size - size

    again = journal.verify_checkpointed()
    assert again == [] and not again.full
    assert again.trusted_lines == n
    last_line = len(lines(journal.path)[n - 1])
    assert again.bytes_read == new + last_line  # the new record, and the checkpoint's own line
    assert "lines 1–" in again.scope()

    nothing = journal.verify_checkpointed()  # nothing new: one line read
    assert nothing == [] and nothing.bytes_read == len(json.dumps(record, separators=(",", ":"))) + 1
    assert journal.verify_checkpointed(full=True).bytes_read >= journal.path.stat().st_size


def test_tampering_after_the_checkpoint_is_found(tmp_path: Path) -> None:
    journal = verified(tmp_path)
    n = len(lines(journal.path))
    add_run(journal, "r-new", t=T0 + 1000)
    data = lines(journal.path)
    data[n + 2] = data[n + 2].replace(b'"step":"edit-env"', b'"step":"edit-ENV"')
    rewrite_in_place(journal.path, b"".join(data))
    problems = journal.verify_checkpointed()
    assert [(p.line, p.kind) for p in problems] == [(n + 3, "edited")]
    assert not problems.full  # found without reading the verified part again
    assert [(p.line, p.kind) for p in journal.verify_checkpointed()] == [(n + 3, "edited")]  # and again


def test_a_forged_prefix_is_caught_though_its_chain_holds(tmp_path: Path) -> None:
    """A record edited and every hash after it recomputed: the whole chain is consistent,
    so a full verify alone finds nothing. The checkpoint remembers the hash it verified."""
    journal = verified(tmp_path)
    forge(journal.path, 3, {"step": "nothing-happened"})
    assert journal.verify() == []  # the chain alone cannot tell
    problems = journal.verify_checkpointed()
    assert [p.kind for p in problems] == ["checkpoint"]
    assert "changed before it" in problems[0].detail and str(checkpoint_path(journal.path)) in problems[0].detail
    assert [p.kind for p in journal.verify_checkpointed(full=True)] == ["checkpoint"]  # --full keeps the alarm
    assert [p.kind for p in journal.verify_checkpointed()] == ["checkpoint"]  # until someone looks into it
    checkpoint_path(journal.path).unlink()
    assert journal.verify_checkpointed() == []


@pytest.mark.parametrize("edit", ["a line removed", "a line added", "a record made longer"])
def test_an_edit_before_the_checkpoint_that_moves_it_is_caught(tmp_path: Path, edit: str) -> None:
    journal = verified(tmp_path)
    data = lines(journal.path)
    if edit == "a line removed":
        del data[4]
    elif edit == "a line added":
        data.insert(4, data[4])
    else:
        data[4] = data[4].replace(b'"step":"edit-env"', b'"step":"edit-the-env"')
    rewrite_in_place(journal.path, b"".join(data))
    problems = journal.verify_checkpointed()
    assert problems[0].kind in ("checkpoint", "removed")
    # ...and the full chain's own findings come with it, where they are
    assert any(p.line in (5, 6) and p.kind != "checkpoint" for p in problems[1:]), problems


def test_a_same_length_edit_before_the_checkpoint_needs_a_full_verify(tmp_path: Path) -> None:
    """The limit of reading nothing twice: an edit that keeps every offset and leaves the
    checkpoint's line alone is not seen by an incremental verify, which says what it
    trusted without reading; --full reads it all and finds it."""
    journal = verified(tmp_path)
    data = lines(journal.path)
    data[4] = data[4].replace(b'"step":"edit-env"', b'"step":"edit-ENV"')
    rewrite_in_place(journal.path, b"".join(data))
    quick = journal.verify_checkpointed()
    assert quick == [] and quick.trusted_lines == len(data) and "not read again" in quick.scope()
    full = journal.verify_checkpointed(full=True)
    assert [(p.line, p.kind) for p in full] == [(5, "edited")]


def test_a_journal_cut_short_below_the_checkpoint_is_caught(tmp_path: Path) -> None:
    journal = verified(tmp_path)
    data = lines(journal.path)
    rewrite_in_place(journal.path, b"".join(data[:-3]))  # the last three records gone
    problems = journal.verify_checkpointed()
    assert problems[0].kind == "removed" and "cut from its end" in problems[0].detail
    assert journal.verify() == []  # the chain alone cannot see records removed from the end
    assert problems[0].kind == "removed"


def test_replacing_the_file_verifies_everything_again(tmp_path: Path) -> None:
    journal = verified(tmp_path)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(journal.path.read_bytes())
    os.replace(copy, journal.path)  # the same records in another file (a restore from backup)
    same = journal.verify_checkpointed()
    assert same == [] and same.full and "replaced" in same.note
    assert not journal.verify_checkpointed().full  # the checkpoint follows the new file

    other = Journal(tmp_path / "other.jsonl")
    for i in range(5):
        add_run(other, f"o-{i}", t=T0 + i)
    os.replace(other.path, journal.path)  # another journal, longer: its line there is another record
    problems = journal.verify_checkpointed()
    assert [p.kind for p in problems] == ["checkpoint"]


@pytest.mark.parametrize("damage", ["garbage", "empty", "a directory", "wrong numbers"])
def test_a_damaged_checkpoint_file(tmp_path: Path, damage: str) -> None:
    journal = verified(tmp_path)
    where = checkpoint_path(journal.path)
    value = json.loads(where.read_text())
    if damage == "garbage":
        where.write_bytes(b"\xffnot json at all")
    elif damage == "empty":
        where.write_bytes(b"")
    elif damage == "a directory":
        where.unlink()
        where.mkdir()
    else:  # a checkpoint that points at another line of the journal
        value["state"][1] -= 1  # offset: one byte short of the record's end
        value["state"][6] -= 1
        where.write_text(json.dumps(value))
    problems = journal.verify_checkpointed()
    if damage == "wrong numbers":
        # It cannot be told whether the journal or the checkpoint was changed: it says both.
        assert [p.kind for p in problems] == ["checkpoint"]
        return
    # Unreadable: nothing to hold the journal against, so everything is verified again.
    assert problems == [] and problems.full
    assert "unreadable" in problems.note or damage == "a directory"
    if damage != "a directory":
        assert not journal.verify_checkpointed().full  # a new checkpoint was written


def test_torn_lines_the_chain_stepped_over_are_reported_every_time(tmp_path: Path) -> None:
    journal = verified(tmp_path)
    with open(journal.path, "ab") as f:
        f.write(b'{"seq":99,"ts":"2025-11-24T00:00')  # a crash mid-write
    torn = journal.verify_checkpointed()
    assert [p.kind for p in torn] == ["torn"]
    journal.append("note", run="r-0", data={"message": "after the crash"})
    first = journal.verify_checkpointed()
    again = journal.verify_checkpointed()
    assert [p.kind for p in first] == [p.kind for p in again] == ["torn"]
    assert "the chain goes on" in again[0].detail
    assert again.bytes_read < 1000  # the checkpoint moved past it


def cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_history_verify_keeps_a_checkpoint_and_full_reads_all(tmp_path: Path) -> None:
    from tests.tui_data import make_config

    config = make_config(root=tmp_path / "fixed")
    journal = Journal(config.journal_path)
    toml = Path(config.path)
    first = cli("history", "--verify", config=toml)
    assert first.returncode == 0 and "hash chain intact" in first.stdout
    journal.append("note", run="r-x", data={"message": "new"})
    second = cli("history", "--verify", config=toml)
    assert second.returncode == 0 and "verified before" in second.stdout and "--full" in second.stdout
    forge(journal.path, 2, {"message": "forged"})
    forged = cli("history", "--verify", config=toml)
    assert forged.returncode == 1 and "checkpoint" in forged.stdout
    full = cli("history", "--verify", "--full", config=toml)
    assert full.returncode == 1 and "checkpoint" in full.stdout
    alone = cli("history", "--full", config=toml)
    assert alone.returncode == 2 and "--full goes with --verify" in alone.stderr


async def test_verify_and_reads_wait_in_a_thread_never_on_the_event_loop(tmp_path: Path) -> None:
    """Another process holds the journal's lock (an append in progress): verify waits for it
    — in a thread, while the event loop goes on and is the one that lets the lock go."""
    import asyncio
    import fcntl
    import threading

    journal = verified(tmp_path)
    journal.append("note", run="r-9", data={"message": "new since the checkpoint"})
    holder = open(journal.path, "rb")
    fcntl.flock(holder, fcntl.LOCK_EX)
    guard = threading.Timer(60, holder.close)  # a hang guard: a blocked loop could never release it
    guard.start()
    try:
        verify = asyncio.create_task(journal.verify_async())
        rows = asyncio.create_task(journal.rows_async())
        for _ in range(20):  # the loop runs on while verify waits for the lock
            await asyncio.sleep(0.01)
        assert not verify.done(), "verify did not wait for the append in progress"
        assert [r.run_id for r in await rows] == ["r-0", "r-1", "r-2", "r-9"]
        assert not holder.closed, "the loop stood still until the hang guard let the lock go"
        fcntl.flock(holder, fcntl.LOCK_UN)
        result = await verify
        assert result == [] and not result.full
    finally:
        guard.cancel()
        holder.close()


def test_a_report_says_how_far_an_incremental_verify_reached(tmp_path: Path) -> None:
    from console.journal import incident_report

    journal = verified(tmp_path)
    n = len(lines(journal.path))
    add_run(journal, "r-9", t=T0 + 900)
    scoped = incident_report(journal.run("r-9"), problems=journal.verify_checkpointed())
    assert "nothing was edited" not in scoped  # not a claim about lines it did not read
    assert "nothing appended since the last verify was edited" in scoped
    assert f"(Lines 1–{n} were verified before" in scoped
    assert "`history --verify --full` reads it all again.)" in scoped

    whole = incident_report(journal.run("r-9"), problems=journal.verify_checkpointed(full=True))
    assert "nothing was edited, removed or reordered" in whole and "Lines 1–" not in whole


def test_a_long_walk_says_it_is_making_progress(tmp_path: Path) -> None:
    """The stall guard takes a read that says nothing for 10 s for a hung filesystem: checking
    a big journal's chain on a busy machine is slow, not hung, and must say so as it goes."""
    from console.journal.chain import BEAT_EVERY, walk

    journal = Journal(tmp_path / "journal.jsonl")
    for i in range(BEAT_EVERY // 10 + 1):
        add_run(journal, f"r-{i}", t=T0 + i)
    beats: list[int] = []
    found = walk(journal.path.read_bytes(), beat=lambda: beats.append(1))
    assert found.problems == [] and len(beats) >= 2
