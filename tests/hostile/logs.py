"""Bad-input kinds: the service's log."""

from __future__ import annotations

import re

from tests.hostile.support import ESCAPES, assert_sane, kind, log_variant, set_key, toml_path

# --- logs -----------------------------------------------------------------------------------


@kind("log", "named pipe")
def log_fifo(ctx) -> None:
    """A named pipe as the service log: `check` and `status` answer (once they hung for good)."""
    fifo = ctx.fifo("staging.log")
    config = log_variant(ctx, fifo)
    said = f"{fifo}: is a named pipe (FIFO), not a regular file"
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(said,))
    assert_sane(ctx.run(config, "status", "staging"), code=(0, 1), says=(said,))


@kind("log", "character device")
def log_device(ctx) -> None:
    config = log_variant(ctx, "/dev/zero")
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=("/dev/zero: is a character device",))


@kind("log", "directory")
def log_directory(ctx) -> None:
    config = log_variant(ctx, ctx.tmp)
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(f"{ctx.tmp}: is a directory",))


@kind("log", "missing")
def log_missing(ctx) -> None:
    missing = ctx.tmp / "gone.log"
    config = log_variant(ctx, missing)
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(f"{missing}: No such file or directory",))


@kind("log", "terminal escapes in log lines")
def log_escapes(ctx) -> None:
    """Log lines that set the window title, clear the screen and reverse text: status and
    check show them escaped."""
    sim = ctx.fresh()
    host = sim.host("staging")
    with open(host.log_file, "a", encoding="utf-8") as fh:
        fh.write(f"[ERROR] analyticbot: boom {ESCAPES}\n")
    for args, code in ((("check", "staging"), 1), (("status", "staging"), (0, 1)), (("status", "--json"), (0, 1))):
        assert_sane(ctx.run(sim.config_path, *args), code=code)


@kind("log", "binary garbage")
def log_binary(ctx) -> None:
    """NUL, invalid UTF-8 and C1 bytes in the log: no crash, no raw byte out."""
    sim = ctx.fresh()
    host = sim.host("staging")
    with open(host.log_file, "ab") as fh:
        fh.write(bytes(range(256)) * 64 + b"\n\x00\x9b2J\xff\xfe\n")
    assert_sane(ctx.run(sim.config_path, "status", "staging", "--json"), code=(0, 1))
    assert_sane(ctx.run(sim.config_path, "check", "staging"), code=(0, 1))


@kind("log", "log command printing binary")
def log_command_binary(ctx) -> None:
    """A log_command (journalctl's stand-in) that prints NULs and escapes."""
    text = ctx.sim.config_path.read_text()
    text = re.sub(r'(?m)^log_file = "\{home\}/logs/staging.log"$', "", text, count=1)
    text = set_key(text, "staging", "log_command", toml_path("printf 'a\\000b\\033[2J\\n\\377\\n'"))
    config = ctx.config(text)
    assert_sane(ctx.run(config, "status", "staging"), code=(0, 1))
