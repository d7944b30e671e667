"""Bad-input kinds: the audit journal, shared by every operator on a bastion."""

from __future__ import annotations

import json
import os
import re

from console.journal.records import ZERO_HASH, record_hash
from tests.hostile.support import ESCAPES, Unchanged, assert_sane, journal_with, kind, run_id_of

# --- the journal ----------------------------------------------------------------------------


def _readers_survive(ctx, sim, run_id: str, bad_line: int, why: str) -> None:
    """Every reader of the journal answers, and the tamper checker names the line."""
    config = sim.config_path
    assert_sane(ctx.run(config, "history"), code=0, says=(run_id, f"line {bad_line}"))
    assert_sane(ctx.run(config, "history", "--markdown"), code=0, says=("| Date |",))
    json.loads(ctx.run(config, "history", "--json").out)
    assert_sane(ctx.run(config, "history", "--verify"), code=1, says=(f"line {bad_line}: bad_json:", why))
    assert_sane(ctx.run(config, "report", run_id), code=0, says=("# Incident report",))
    assert_sane(ctx.run(config, "checklist", run_id), code=1, says=("Post-rollback checklist",))


@kind("journal", "deeply nested JSON line")
def journal_nested(ctx) -> None:
    """One line of 100 000 nested arrays: history, --verify (the tamper checker), report,
    checklist died with RecursionError; rollback failed after a recorded run."""
    sim, run_id, bad = journal_with(ctx, b"[" * 100_000 + b"]" * 100_000)
    _readers_survive(ctx, sim, run_id, bad, "nested more than")
    # Writers after it: each run is recorded and ends with its own exit code (rollback once
    # exited 1 with a traceback after a successful, fully recorded run).
    answer = ctx.run(sim.config_path, "restore", "--env", "staging", "--run", run_id, "--yes")
    assert_sane(answer, code=0, says=("succeeded",))
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "after")
    assert_sane(answer, code=0, says=("succeeded",))


@kind("journal", "giant line")
def journal_giant(ctx) -> None:
    """A 6 MB line (someone cat a log into the journal)."""
    sim, run_id, bad = journal_with(ctx, b'{"seq":' + b"9" * 10 + b',"x":"' + b"A" * 6_000_000 + b'"}')
    _readers_survive(ctx, sim, run_id, bad, "more than the 4194304 allowed")


@kind("journal", "NaN in a record")
def journal_nan(ctx) -> None:
    """A record holding NaN (not JSON, though Python would read it)."""
    sim, run_id, bad = journal_with(ctx, b'{"seq":99,"ts":"x","type":"note","data":{"v":NaN},"prev":"0","hash":"0"}')
    _readers_survive(ctx, sim, run_id, bad, "NaN is not a number JSON allows")


@kind("journal", "record of the wrong shape")
def journal_wrong_types(ctx) -> None:
    """A record whose who, data and pid have the wrong types, with a correct hash."""
    record = {
        "seq": 99,
        "ts": "2025-01-01T00:00:00Z",
        "type": "run_started",
        "run": "r-bad",
        "env": "staging",
        "who": {"user": ["x"], "pid": 10**30},
        "data": [1, 2],
        "prev": ZERO_HASH,
    }
    record["hash"] = record_hash(record)
    sim, run_id, bad = journal_with(ctx, json.dumps(record).encode())
    _readers_survive(ctx, sim, run_id, bad, "not a record's fields and types")


@kind("journal", "binary garbage line")
def journal_binary(ctx) -> None:
    sim, run_id, bad = journal_with(ctx, b"\x00\xff\xfe\x1b[2J garbage \x9b")
    _readers_survive(ctx, sim, run_id, bad, "not UTF-8")


@kind("journal", "5000-digit number")
def journal_long_number(ctx) -> None:
    """An integer Python refuses to parse (over 4300 digits)."""
    sim, run_id, bad = journal_with(ctx, b'{"seq":' + b"1" * 5000 + b"}")
    _readers_survive(ctx, sim, run_id, bad, "bad JSON")


@kind("journal", "named pipe")
def journal_fifo(ctx) -> None:
    """The shared journal path replaced by a named pipe: readers and writers answer."""
    sim = ctx.fresh()
    journal = sim.directory / "journal.jsonl"
    journal.unlink(missing_ok=True)
    os.mkfifo(journal)
    said = f"cannot read the audit journal {journal}: is a named pipe (FIFO), not a regular file"
    assert_sane(ctx.run(sim.config_path, "history"), code=2, says=(said,))
    assert_sane(ctx.run(sim.config_path, "history", "--verify"), code=2, says=(said,))
    with Unchanged(sim, journal=False):
        answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert_sane(answer, code=2, says=(str(journal), "named pipe"))


@kind("journal", "directory")
def journal_directory(ctx) -> None:
    sim = ctx.fresh()
    journal = sim.directory / "journal.jsonl"
    journal.unlink(missing_ok=True)
    journal.mkdir()
    assert_sane(ctx.run(sim.config_path, "history"), code=2, says=(f"{journal}: is a directory",))


@kind("journal", "escape sequences in --reason")
def journal_reason_escapes(ctx) -> None:
    """ESC, BEL, VT, FF and U+202E in a --reason: every output shows them escaped."""
    sim = ctx.fresh()
    reason = f"latency {ESCAPES} end"
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", reason)
    assert_sane(answer, code=0)
    run_id = run_id_of(answer)
    shown = "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mRED\\x0b\\x0c\\u202eevil"
    for args in (("history",), ("history", "--markdown"), ("report", run_id), ("checklist", run_id)):
        assert_sane(ctx.run(sim.config_path, *args), code=(0, 1), says=(shown,) if args[0] != "checklist" else ())
    doc = ctx.run(sim.config_path, "history", "--json")
    assert_sane(doc, code=0)
    assert json.loads(doc.out)[-1]["reason"] == reason  # the JSON value is exact, only its text is escaped


@kind("journal", "HTML in --reason")
def journal_reason_html(ctx) -> None:
    """`<img src=x onerror=alert(1)>` in a reason: inert in the markdown history and report."""
    sim = ctx.fresh()
    reason = "slow <img src=x onerror=alert(1)> <script>x</script>"
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", reason)
    run_id = run_id_of(answer)
    for args in (("history", "--markdown"), ("report", run_id)):
        out = ctx.run(sim.config_path, *args)
        assert_sane(out, code=0, says=("&lt;img src=x onerror=alert(1)>", "&lt;script>"))
        prose = re.sub(r"(?ms)^(`{3,}).*?^\1", "", out.out)  # inside a code fence HTML is inert text
        assert "<img" not in prose and "<script" not in prose


@kind("journal", "escapes in a checklist note")
def journal_note_escapes(ctx) -> None:
    """`checklist --tick ITEM --note` with terminal escapes: the checklist and the report show them escaped."""
    sim = ctx.fresh()
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    run_id = run_id_of(answer)
    tick = ctx.run(sim.config_path, "checklist", run_id, "--tick", "dashboards", "--note", f"grafana {ESCAPES}")
    assert_sane(tick, code=1, says=("grafana \\x1b]0;pwned",))
    assert_sane(ctx.run(sim.config_path, "report", run_id), code=0, says=("grafana \\x1b]0;pwned",))


@kind("journal", "lone surrogate in a record")
def journal_surrogate(ctx) -> None:
    """A record whose reason holds a lone surrogate escape (\\ud800): nothing can print it raw."""
    record = {
        "seq": 99,
        "ts": "2025-01-01T00:00:00Z",
        "type": "run_requested",
        "run": "r-20250101-000000-dead",
        "env": "staging",
        "who": {"user": "mallory", "pid": 1},
        "data": {"action": "quick", "reason": "bad \ud800 byte \x1b[2J"},
        "prev": ZERO_HASH,
    }
    record["hash"] = record_hash(record)
    sim, _, _ = journal_with(ctx, json.dumps(record).encode())
    assert_sane(ctx.run(sim.config_path, "history"), code=0, says=("bad \\ud800 byte \\x1b[2J",))
    assert_sane(ctx.run(sim.config_path, "history", "--json"), code=0, says=("bad \ufffd byte",))
    assert_sane(ctx.run(sim.config_path, "report", "r-20250101-000000-dead"), code=0)
