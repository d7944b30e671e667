"""Bad-input kinds: command-line arguments."""

from __future__ import annotations

import json
from pathlib import Path

from tests.hostile.support import Unchanged, assert_sane, kind, run_id_of

# --- command-line arguments -----------------------------------------------------------------


def _wait_case(ctx, value: str) -> None:
    sim = ctx.sim
    with Unchanged(sim):
        answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", value)
    # the bound is the longest [approvals] expire_after_s (7 days): a wait past the lapse is pointless
    assert_sane(answer, code=2, says=("argument --wait: must be between 0 and 604800 seconds", repr(value)))


@kind("arguments", "--wait inf")
def wait_inf(ctx) -> None:
    _wait_case(ctx, "inf")


@kind("arguments", "--wait -5")
def wait_negative(ctx) -> None:
    _wait_case(ctx, "-5")


@kind("arguments", "--wait nan")
def wait_nan(ctx) -> None:
    _wait_case(ctx, "nan")


def _a_run(ctx) -> tuple[Path, str]:
    history = json.loads(ctx.run(ctx.sim.config_path, "history", "--json").out)
    if history:
        return ctx.sim.config_path, history[-1]["run_id"]
    sim = ctx.fresh()
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    return sim.config_path, run_id_of(answer)


@kind("arguments", "report into a missing directory")
def report_missing_dir(ctx) -> None:
    config, run_id = _a_run(ctx)
    target = ctx.tmp / "nonexistent" / "dir" / "r.md"
    answer = ctx.run(config, "report", run_id, "-o", str(target))
    assert_sane(answer, code=2, says=(f"cannot write the report to {target}: the directory {target.parent} does not",))


@kind("arguments", "report onto a directory")
def report_onto_dir(ctx) -> None:
    config, run_id = _a_run(ctx)
    answer = ctx.run(config, "report", run_id, "-o", str(ctx.tmp))
    assert_sane(answer, code=2, says=(f"cannot write the report to {ctx.tmp}: it is a directory",))


@kind("arguments", "report onto a named pipe")
def report_onto_fifo(ctx) -> None:
    config, run_id = _a_run(ctx)
    fifo = ctx.fifo("report.md")
    answer = ctx.run(config, "report", run_id, "-o", str(fifo))
    assert_sane(answer, code=2, says=(f"cannot write the report to {fifo}: it is a named pipe",))


@kind("arguments", "emergency on staging without a reason")
def emergency_no_reason(ctx) -> None:
    """`--emergency P0` with no --reason (the README says a reason is required)."""
    with Unchanged(ctx.sim):
        answer = ctx.run(ctx.sim.config_path, "rollback", "quick", "--env", "staging", "--emergency", "P0", "--yes")
    assert_sane(answer, code=2, says=("a P0 emergency override needs a typed reason",))


@kind("arguments", "escape sequence in --env")
def env_name_escapes(ctx) -> None:
    answer = ctx.run(ctx.sim.config_path, "check", "\x1b[31mstaging\x07")
    assert_sane(answer, code=2, says=("no environment '\\x1b[31mstaging\\x07'",))


@kind("arguments", "escape sequence in a run id")
def run_id_escapes(ctx) -> None:
    answer = ctx.run(ctx.sim.config_path, "report", "\x1b]0;pwned\x07r-1")
    assert_sane(answer, code=2, says=("no run '\\x1b]0;pwned\\x07r-1'",))


@kind("arguments", "unknown checklist item")
def checklist_unknown_item(ctx) -> None:
    config, run_id = _a_run(ctx)
    answer = ctx.run(config, "checklist", run_id, "--tick", "no-such-item")
    assert_sane(answer, code=2, says=("no-such-item",))


@kind("arguments", "simulate with zero hosts")
def simulate_zero_hosts(ctx) -> None:
    answer = ctx.run(None, "simulate", "--dir", str(ctx.tmp / "sim"), "--hosts", "0")
    assert_sane(answer, code=2, says=("argument --hosts: must be between 1 and 200, got '0'",))
    assert not (ctx.tmp / "sim").exists()


@kind("arguments", "unknown action")
def unknown_action(ctx) -> None:
    answer = ctx.run(ctx.sim.config_path, "rollback", "reboot-everything", "--env", "staging")
    assert_sane(
        answer,
        code=2,
        says=("unknown action 'reboot-everything'", "the rollbacks of Phase 4 Rollback Procedures: quick"),
    )


@kind("arguments", "a 120 kB reason")
def huge_reason(ctx) -> None:
    """A reason of 120 000 characters (near Linux's limit for one argument): recorded
    bounded, shown bounded."""
    sim = ctx.fresh()
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "x" * 120_000)
    assert_sane(answer, code=0, says=("succeeded",))
    history = ctx.run(sim.config_path, "history")
    assert_sane(history, code=0, says=("characters cut by the journal",))
    assert len(history.out) < 50_000
