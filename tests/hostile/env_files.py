"""Bad-input kinds: the service's env file on a host."""

from __future__ import annotations

import os
from pathlib import Path

from console.envfile import parse_env
from tests.hostile.support import ENV_ESCAPES, Unchanged, assert_sane, env_variant, kind, run_id_of
from tests.phase4 import ADVANCED, ALL_OFF, ALL_ON, CONTENT_TYPE, RULES, TIME_WEIGHTING

# --- env files ------------------------------------------------------------------------------


@kind("env file", "named pipe")
def env_fifo(ctx) -> None:
    """A named pipe as the env file: check, plan and rollback answer; nothing changes."""
    fifo = ctx.fifo(".env.staging")
    config = env_variant(ctx, fifo)
    said = f"{fifo} is a named pipe (FIFO), not a regular file"
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(said,))
    assert_sane(ctx.run(config, "plan", "quick", "--env", "staging"), code=1, says=("the preview is incomplete", said))
    with Unchanged(ctx.sim):
        answer = ctx.run(config, "rollback", "quick", "--env", "staging", "--yes")
    assert_sane(answer, code=2, says=("refused: the preview is incomplete", said, "nothing was changed"))


@kind("env file", "NUL-filled")
def env_nul_filled(ctx) -> None:
    """An env file of 4096 NUL bytes: once read as "all flags on", rolled back anyway, and
    the service left stopped. Now refused before anything changes, the line named."""
    sim = ctx.fresh()
    host = sim.host("staging")
    host.env_file.write_bytes(b"\x00" * 4096)
    with Unchanged(sim):
        plan = ctx.run(sim.config_path, "plan", "quick", "--env", "staging")
        answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    says = (f"{host.env_file}: line 1 holds a NUL byte: not a text env file",)
    assert_sane(plan, code=1, says=says)
    assert_sane(answer, code=2, says=(*says, "nothing was changed"))
    assert plan.out.count("\\x00") < 10, "the NUL bytes are not echoed"


@kind("env file", "binary line beside the flags")
def env_binary_line(ctx) -> None:
    """Control bytes on a line between two flag lines (a damaged write)."""
    sim = ctx.fresh()
    host = sim.host("staging")
    text = host.env_file.read_bytes()
    damaged = text.replace(f"{TIME_WEIGHTING}=".encode(), b"\x01\x02\x03\x04garbage\n" + f"{TIME_WEIGHTING}=".encode())
    host.env_file.write_bytes(damaged)
    line = damaged[: damaged.index(b"\x01")].count(b"\n") + 1
    with Unchanged(sim):
        answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert_sane(answer, code=2, says=(f"line {line} holds the control byte 0x01: not a text env file",))


@kind("env file", "escape sequences in a value")
def env_escapes(ctx) -> None:
    """Terminal escapes (title, clear screen, colours, bidi) in a value next to the flags:
    the plan shows no raw byte and no value."""
    sim = ctx.fresh()
    host = sim.host("staging")
    text = host.env_file.read_text()
    host.env_file.write_text(text.replace(f"{ADVANCED}=", f"MOTD={ENV_ESCAPES}\n{ADVANCED}=", 1))
    with Unchanged(sim):
        answer = ctx.run(sim.config_path, "plan", "quick", "--env", "staging")
    assert_sane(answer, code=0, says=(" MOTD=…  (value not shown)", f"+{ADVANCED}=false"))
    assert "pwned" not in answer.text


@kind("env file", "escape byte in a flag line")
def env_escape_in_flag(ctx) -> None:
    """An ESC byte inside a flag's own line: the diff shows it escaped, never raw."""
    sim = ctx.fresh()
    host = sim.host("staging")
    text = host.env_file.read_text()
    host.env_file.write_text(text.replace(f"{CONTENT_TYPE}=true", f"{CONTENT_TYPE}=true # \x1b[8mhidden", 1))
    with Unchanged(sim):
        answer = ctx.run(sim.config_path, "plan", "quick", "--env", "staging")
    assert_sane(answer, code=0, says=(f"-{CONTENT_TYPE}=true # \\x1b[8mhidden",))


@kind("env file", "multi-line secret beside the flags")
def env_multiline_secret(ctx) -> None:
    """A PEM key in a quoted multi-line value right above the flags: every line of it
    stays hidden in the diff, not only the first."""
    sim = ctx.fresh()
    host = sim.host("staging")
    text = host.env_file.read_text()
    pem = 'TLS_KEY="-----BEGIN KEY-----\nCANARY-PEM-LINE-1\nAPI_TOKEN=CANARY-PEM-LINE-2\n-----END KEY-----"\n'
    host.env_file.write_text(text.replace(f"{ADVANCED}=", pem + f"{ADVANCED}=", 1))
    with Unchanged(sim):
        answer = ctx.run(sim.config_path, "plan", "quick", "--env", "staging")
    assert_sane(answer, code=0, says=("(value continued, not shown)",))
    assert "CANARY-PEM" not in answer.text and "BEGIN KEY" not in answer.text


@kind("env file", "bidi override in a comment")
def env_bidi_comment(ctx) -> None:
    """A right-to-left override in a comment next to the flags (it reverses what follows)."""
    sim = ctx.fresh()
    host = sim.host("staging")
    text = host.env_file.read_text()
    host.env_file.write_text(text.replace(f"{ADVANCED}=", f"# keep \u202eeurt={ADVANCED}\n{ADVANCED}=", 1))
    answer = ctx.run(sim.config_path, "plan", "quick", "--env", "staging")
    assert_sane(answer, code=0, says=("# keep \\u202eeurt",))


@kind("env file", "symlink")
def env_symlink(ctx) -> None:
    """The env file is a symlink to a shared file: the rollback edits the target and keeps
    the link (it once replaced the link and left the service's file with the flags on)."""
    sim = ctx.fresh()
    host = sim.host("staging")
    shared = host.home / "shared" / "env"
    shared.parent.mkdir()
    shared.write_bytes(host.env_file.read_bytes())
    host.env_file.unlink()
    host.env_file.symlink_to(Path("shared") / "env")
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "symlink case")
    assert_sane(answer, code=0, says=("succeeded",))
    assert host.env_file.is_symlink() and os.readlink(host.env_file) == "shared/env"
    assert parse_env(shared.read_bytes()).flags(RULES) == ALL_OFF
    run_id = run_id_of(answer)
    assert_sane(ctx.run(sim.config_path, "restore", "--env", "staging", "--run", run_id, "--yes"), code=0)
    assert host.env_file.is_symlink() and parse_env(shared.read_bytes()).flags(RULES) == ALL_ON


@kind("env file", "directory")
def env_directory(ctx) -> None:
    config = env_variant(ctx, ctx.tmp)
    assert_sane(ctx.run(config, "plan", "quick", "--env", "staging"), code=1, says=(f"{ctx.tmp} is a directory",))


@kind("env file", "too big")
def env_too_big(ctx) -> None:
    """A 17 MB env file (something appended a log to it)."""
    big = ctx.tmp / ".env.big"
    with open(big, "wb") as fh:
        fh.write(f"{ADVANCED}=true\n".encode())
        fh.write(b"# x\n" * (17 * 1024 * 1024 // 4))
    config = env_variant(ctx, big)
    assert_sane(ctx.run(config, "plan", "quick", "--env", "staging"), code=1, says=(f"{big} is larger than",))


@kind("env file", "missing")
def env_missing(ctx) -> None:
    missing = ctx.tmp / ".env.gone"
    config = env_variant(ctx, missing)
    with Unchanged(ctx.sim):
        answer = ctx.run(config, "rollback", "quick", "--env", "staging", "--yes")
    assert_sane(answer, code=2, says=(f"cannot read {missing}: No such file or directory", "nothing was changed"))


@kind("env file", "character device")
def env_device(ctx) -> None:
    """/dev/zero as the env file."""
    config = env_variant(ctx, "/dev/zero")
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=("/dev/zero is a character device",))


@kind("env file", "CRLF, BOM and Latin-1 bytes")
def env_crlf_bom_latin1(ctx) -> None:
    """An env file from Windows with a Latin-1 name in it: rolled back and restored byte
    for byte (the file is text, just not UTF-8)."""
    sim = ctx.fresh()
    host = sim.host("staging")
    original = b"\xef\xbb\xbf" + host.env_file.read_bytes().replace(b"\n", b"\r\n") + b"OWNER=Jos\xe9\r\n"
    host.env_file.write_bytes(original)
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert_sane(answer, code=0, says=("succeeded",))
    run_id = run_id_of(answer)
    assert_sane(ctx.run(sim.config_path, "restore", "--env", "staging", "--run", run_id, "--yes"), code=0)
    assert host.env_file.read_bytes() == original
