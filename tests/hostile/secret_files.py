"""Bad-input kinds: secret files (the probe password, the webhook URL, the DSN)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.hostile.support import assert_sane, kind, toml_path, with_password_file

# --- secret files ---------------------------------------------------------------------------


@kind("secret file", "named pipe as the password file")
def password_fifo(ctx) -> None:
    """A named pipe as the probe password file: it once froze the console in open()."""
    fifo = ctx.fifo("password")
    config = with_password_file(ctx, fifo)
    assert_sane(
        ctx.run(config, "check", "staging"),
        code=1,
        says=(f"cannot read secret file {fifo}: is a named pipe (FIFO), not a regular file",),
    )


@kind("secret file", "character device as the password file")
def password_device(ctx) -> None:
    """/dev/zero as the password file: endless bytes."""
    config = with_password_file(ctx, Path("/dev/zero"))
    assert_sane(
        ctx.run(config, "check", "staging"), code=1, says=("cannot read secret file /dev/zero: is a character",)
    )


@kind("secret file", "directory as the password file")
def password_directory(ctx) -> None:
    config = with_password_file(ctx, ctx.tmp)
    assert_sane(
        ctx.run(config, "check", "staging"), code=1, says=(f"cannot read secret file {ctx.tmp}: is a directory",)
    )


@kind("secret file", "huge password file")
def password_huge(ctx) -> None:
    """A 1 MB password file (a key pasted into it, or a log)."""
    big = ctx.tmp / "password"
    big.write_bytes(b"x" * 1024 * 1024)
    config = with_password_file(ctx, big)
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(f"cannot read secret file {big}:", "larger than"))


@kind("secret file", "password file not UTF-8")
def password_not_utf8(ctx) -> None:
    """A password file in Latin-1: its bytes are not quoted back."""
    bad = ctx.tmp / "password"
    bad.write_bytes(b"s3cr\xe9t-latin1")
    config = with_password_file(ctx, bad)
    answer = ctx.run(config, "check", "staging")
    assert_sane(answer, code=1, says=(f"secret file {bad} is not UTF-8 text",))
    assert "s3cr" not in answer.text


@kind("secret file", "named pipe as the webhook URL file")
def webhook_fifo(ctx) -> None:
    """The webhook URL file is a named pipe: the rollback goes on, the failure is recorded."""
    sim = ctx.fresh()
    fifo = ctx.fifo("webhook")
    sim.config_path.write_text(
        sim.config_path.read_text() + f"\n[notifications]\nwebhook = {{ file = {toml_path(fifo)} }}\n"
    )
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "bad input suite")
    assert_sane(answer, code=0, says=("succeeded",))
    journal = (sim.directory / "journal.jsonl").read_text()
    assert "notify_failed" in journal and "is a named pipe (FIFO)" in journal


@kind("secret file", "named pipe as the DSN file")
def dsn_fifo(ctx) -> None:
    """The database DSN file is a named pipe: `status` says so and returns."""
    sim = ctx.sim
    fifo = ctx.fifo("dsn")
    text = sim.config_path.read_text()
    if "[environments.staging.database]" not in text:
        text += '\n[environments.staging.database]\nrollback_script = "{home}/app/x.sql"\n'
        text += f"dsn = {{ file = {toml_path(fifo)} }}\n"
    else:
        text = re.sub(r"(?m)^dsn = .*$", f"dsn = {{ file = {toml_path(fifo)} }}", text)
    config = ctx.config(text)
    answer = ctx.run(config, "status", "staging")
    assert_sane(answer, code=(0, 1), says=(f"cannot read secret file {fifo}: is a named pipe",))
