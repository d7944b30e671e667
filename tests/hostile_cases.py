"""The kinds of bad input the suite tries (registered with @kind; run by test_hostile_input.py).

Families: config, secret file, env file, log, journal, arguments, console. Each kind is a
function of the suite's Ctx; its docstring says what a careful operator (or an attacker)
put where.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import asyncssh

from console.envfile import parse_env
from console.flags import ADVANCED, ALL_OFF, ALL_ON, CONTENT_TYPE, TIME_WEIGHTING
from console.journal.records import ZERO_HASH, record_hash
from tests.hostile_support import Unchanged, assert_sane, kind, set_key

MINIMAL = """\
[environments.staging]
kind = "staging"
hosts = ["local"]
api_url = "http://127.0.0.1:10300"
channel_id = -100
login_email = "ops@example.com"
password = { env = "PROBE_PASSWORD" }
env_file = "/srv/analyticbot/.env.staging"
restart_command = "systemctl restart analyticbot-api"
pid_command = "pgrep -f uvicorn"
log_file = "/var/log/analyticbot/staging.log"
"""
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mRED\x0b\x0c\u202eevil"
# The same without BEL: an env file with a BEL in it is refused as not text (env_binary_line).
ENV_ESCAPES = "\x1b]0;pwned\x1b\\\x1b[2J\x1b[31mRED\x0b\x0c\u202eevil"


def _j(value: object) -> str:
    return json.dumps(str(value))


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# --- config ---------------------------------------------------------------------------------


def _validate(ctx, path: Path, *, code: int = 2, says: tuple[str, ...] = ()) -> None:
    assert_sane(ctx.run(None, "config", "validate", str(path)), code=code, says=says)


@kind("config", "named pipe")
def config_fifo(ctx) -> None:
    """A named pipe as the config file: `config validate` and `status` answer, never block."""
    fifo = ctx.fifo("console.toml")
    _validate(ctx, fifo, says=(f"{fifo}: cannot read config: is a named pipe (FIFO), not a regular file",))
    assert_sane(ctx.run(fifo, "status"), code=2, says=(str(fifo), "named pipe"))


@kind("config", "character device")
def config_dev_zero(ctx) -> None:
    """/dev/zero as the config: endless zeros once ran the console out of memory."""
    _validate(ctx, Path("/dev/zero"), says=("/dev/zero: cannot read config: is a character device",))


@kind("config", "directory")
def config_directory(ctx) -> None:
    """A directory where the config should be."""
    _validate(ctx, ctx.tmp, says=(f"{ctx.tmp}: cannot read config: is a directory",))


@kind("config", "too big")
def config_too_big(ctx) -> None:
    """A 2 MB config (a log pasted into it)."""
    path = ctx.config(MINIMAL + "# padding\n" * 200_000)
    _validate(ctx, path, says=(f"{path}: cannot read config: ", "is larger than 1048576 bytes"))


@kind("config", "not UTF-8")
def config_not_utf8(ctx) -> None:
    """A Latin-1 byte in the config."""
    path = ctx.tmp / "console.toml"
    path.write_bytes(MINIMAL.replace("ops@", "op\xe9@").encode("latin-1"))
    _validate(ctx, path, says=(f"{path}:6: config is not valid UTF-8 (byte 0xe9 at column",))


@kind("config", "UTF-8 BOM")
def config_bom(ctx) -> None:
    """A config saved by Notepad: a UTF-8 byte order mark before the first table."""
    path = ctx.tmp / "console.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    _validate(ctx, path, code=0, says=(f"{path}: ok — staging (staging, 1 host)",))


@kind("config", "NUL byte")
def config_nul(ctx) -> None:
    """A NUL byte in the middle of a value."""
    path = ctx.tmp / "console.toml"
    path.write_bytes(MINIMAL.replace("ops@", "ops\x00@").encode())
    _validate(ctx, path, says=(f"{path}:6: not valid TOML",))


@kind("config", "nested too deeply")
def config_deep(ctx) -> None:
    """An array nested 5000 deep (tomllib recurses)."""
    path = ctx.config(MINIMAL + "x = " + "[" * 5000 + "]" * 5000 + "\n")
    _validate(ctx, path, says=(f"{path}: not valid TOML: nested too deeply",))


@kind("config", "infinite probe timeout")
def config_inf_timeout(ctx) -> None:
    """`probe_timeout_s = inf`: once accepted, and `status` never returned."""
    path = ctx.config(MINIMAL + "[thresholds]\nprobe_timeout_s = inf\n")
    _validate(ctx, path, says=(f"{path}:13: thresholds.probe_timeout_s: must be a finite number, got inf",))


@kind("config", "NaN matrix threshold")
def config_nan_above(ctx) -> None:
    """`above = nan` in a decision-matrix row: once accepted, and the row silently never lit."""
    row = '[[decision_matrix]]\nsymptom = "slow"\nseverity = "HIGH"\naction = "quick"\nsignal = "response_time_s"\n'
    path = ctx.config(MINIMAL + row + "above = nan\n")
    _validate(ctx, path, says=(f"{path}:17: decision_matrix[0].above: must be a finite number, got nan",))


@kind("config", "busy-loop probe interval")
def config_tiny_interval(ctx) -> None:
    """`probe_interval_s = 0.001`: 122 % of a core."""
    path = ctx.config(MINIMAL + "[thresholds]\nprobe_interval_s = 0.001\n")
    _validate(ctx, path, says=(f"{path}:13: thresholds.probe_interval_s: must be between 1 and 3600 s, got 0.001",))


@kind("config", "integer beyond 64 bits")
def config_huge_int(ctx) -> None:
    """`days = 10**30` (TOML integers are 64-bit; tomllib reads any)."""
    path = ctx.config(MINIMAL + "days = 1000000000000000000000000000000\n")
    _validate(ctx, path, says=(f"{path}:12: environments.staging.days: is out of range (integers are 64-bit)",))


@kind("config", "negative connect timeout")
def config_negative_timeout(ctx) -> None:
    """`connect_timeout = -1` on a host."""
    text = MINIMAL.replace('hosts = ["local"]', 'hosts = ["web-1"]') + (
        '[hosts.web-1]\naddress = "10.0.0.5"\nconnect_timeout = -1\n'
    )
    path = ctx.config(text)
    _validate(ctx, path, says=(f"{path}:14: hosts.web-1.connect_timeout: must be more than 0 and at most 300 s",))


@kind("config", "empty error window")
def config_zero_window(ctx) -> None:
    """`error_lines_window = 0`: "no errors in the last 0 lines" would always pass."""
    path = ctx.config(MINIMAL + "[thresholds]\nerror_lines_window = 0\n")
    _validate(ctx, path, says=(f"{path}:13: thresholds.error_lines_window: must be between 1 and 100000 lines",))


@kind("config", "infinite webhook timeout")
def config_webhook_timeout(ctx) -> None:
    """`[notifications] timeout_s = inf`: a notification must never hold up a rollback."""
    path = ctx.config(MINIMAL + '[notifications]\nwebhook = { env = "HOOK" }\ntimeout_s = inf\n')
    _validate(ctx, path, says=(f"{path}:14: notifications.timeout_s: must be a finite number, got inf",))


@kind("config", "secret written in the config")
def config_plain_secret(ctx) -> None:
    """A password written in the config itself: refused, and not repeated back."""
    path = ctx.config(MINIMAL.replace('{ env = "PROBE_PASSWORD" }', '"hunter2-in-config"'))
    answer = ctx.run(None, "config", "validate", str(path))
    assert_sane(answer, code=2, says=(f"{path}:7: environments.staging.password: secrets are never written",))
    assert "hunter2-in-config" not in answer.text


@kind("config", "escape sequence in a name")
def config_escape_in_name(ctx) -> None:
    """An environment named with an escape sequence and a bidi override: shown escaped."""
    path = ctx.config(MINIMAL.replace("[environments.staging]", '[environments."st\\u001b[31mag\\u202eing"]'))
    _validate(ctx, path, code=0, says=("st\\x1b[31mag\\u202eing (staging, 1 host)",))


@kind("config", "missing")
def config_missing(ctx) -> None:
    """--config naming a file that is not there."""
    missing = ctx.tmp / "nowhere.toml"
    assert_sane(ctx.run(missing, "status"), code=2, says=(f"no config at {missing}",))


@kind("config", "wrong type for a table")
def config_wrong_table(ctx) -> None:
    """`thresholds = 5` where a table belongs."""
    path = ctx.config("thresholds = 5\n" + MINIMAL)
    _validate(ctx, path, says=(f"{path}:1: thresholds: expected a table, got an integer",))


@kind("config", "a host whose key is unknown or changed")
def config_host_key(ctx) -> None:
    """A host's key not in known_hosts, or another key there: `plan` and `rollback` once
    printed a traceback (`status` handled it well). Now: the fingerprint and how to trust
    it, exit 1 for the plan, a refusal (exit 2) before anything changes for the rollback."""
    from tests.engine_support import ssh_target

    sshd = ctx.request.getfixturevalue("sshd")
    sim = ctx.fresh(ssh=ssh_target(sshd))
    text = sim.config_path.read_text()
    wrong = ctx.tmp / "known_hosts_wrong"
    wrong.write_text(sshd.known_hosts_line(asyncssh.generate_private_key("ssh-ed25519")))
    empty = ctx.tmp / "known_hosts_empty"
    empty.write_text("")
    for known, said in ((empty, "host key is unknown"), (wrong, "host key has CHANGED")):
        config = ctx.config(re.sub(r"(?m)^known_hosts = .*$", f"known_hosts = {_j(known)}", text), f"{known.name}.toml")
        assert_sane(
            ctx.run(config, "plan", "quick", "--env", "staging"), code=1, says=(said, sshd.host_key_fingerprint)
        )
        with Unchanged(sim):
            answer = ctx.run(config, "rollback", "quick", "--env", "staging", "--yes")
        assert_sane(answer, code=2, says=(said, "nothing was changed"))


# --- secret files ---------------------------------------------------------------------------


def _with_password_file(ctx, secret: Path) -> Path:
    text = ctx.sim.config_path.read_text()
    return ctx.config(set_key(text, "staging", "password", f"{{ file = {_j(secret)} }}"))


@kind("secret file", "named pipe as the password file")
def password_fifo(ctx) -> None:
    """A named pipe as the probe password file: it once froze the console in open()."""
    fifo = ctx.fifo("password")
    config = _with_password_file(ctx, fifo)
    assert_sane(
        ctx.run(config, "check", "staging"),
        code=1,
        says=(f"cannot read secret file {fifo}: is a named pipe (FIFO), not a regular file",),
    )


@kind("secret file", "character device as the password file")
def password_device(ctx) -> None:
    """/dev/zero as the password file: endless bytes."""
    config = _with_password_file(ctx, Path("/dev/zero"))
    assert_sane(
        ctx.run(config, "check", "staging"), code=1, says=("cannot read secret file /dev/zero: is a character",)
    )


@kind("secret file", "directory as the password file")
def password_directory(ctx) -> None:
    config = _with_password_file(ctx, ctx.tmp)
    assert_sane(
        ctx.run(config, "check", "staging"), code=1, says=(f"cannot read secret file {ctx.tmp}: is a directory",)
    )


@kind("secret file", "huge password file")
def password_huge(ctx) -> None:
    """A 1 MB password file (a key pasted into it, or a log)."""
    big = ctx.tmp / "password"
    big.write_bytes(b"x" * 1024 * 1024)
    config = _with_password_file(ctx, big)
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(f"cannot read secret file {big}:", "larger than"))


@kind("secret file", "password file not UTF-8")
def password_not_utf8(ctx) -> None:
    """A password file in Latin-1: its bytes are not quoted back."""
    bad = ctx.tmp / "password"
    bad.write_bytes(b"s3cr\xe9t-latin1")
    config = _with_password_file(ctx, bad)
    answer = ctx.run(config, "check", "staging")
    assert_sane(answer, code=1, says=(f"secret file {bad} is not UTF-8 text",))
    assert "s3cr" not in answer.text


@kind("secret file", "named pipe as the webhook URL file")
def webhook_fifo(ctx) -> None:
    """The webhook URL file is a named pipe: the rollback goes on, the failure is recorded."""
    sim = ctx.fresh()
    fifo = ctx.fifo("webhook")
    sim.config_path.write_text(sim.config_path.read_text() + f"\n[notifications]\nwebhook = {{ file = {_j(fifo)} }}\n")
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
        text += f"dsn = {{ file = {_j(fifo)} }}\n"
    else:
        text = re.sub(r"(?m)^dsn = .*$", f"dsn = {{ file = {_j(fifo)} }}", text)
    config = ctx.config(text)
    answer = ctx.run(config, "status", "staging")
    assert_sane(answer, code=(0, 1), says=(f"cannot read secret file {fifo}: is a named pipe",))


# --- env files ------------------------------------------------------------------------------


def _env_variant(ctx, env_file: Path | str) -> Path:
    return ctx.config(set_key(ctx.sim.config_path.read_text(), "staging", "env_file", _j(env_file)))


@kind("env file", "named pipe")
def env_fifo(ctx) -> None:
    """A named pipe as the env file: check, plan and rollback answer; nothing changes."""
    fifo = ctx.fifo(".env.staging")
    config = _env_variant(ctx, fifo)
    said = f"{fifo} is a named pipe (FIFO), not a regular file"
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(said,))
    assert_sane(ctx.run(config, "plan", "quick", "--env", "staging"), code=1, says=("the preview is incomplete", said))
    with Unchanged(ctx.sim):
        answer = ctx.run(config, "rollback", "quick", "--env", "staging", "--yes")
    assert_sane(answer, code=2, says=("cannot run: the preview is incomplete", said, "nothing was changed"))


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
    assert parse_env(shared.read_bytes()).flags() == ALL_OFF
    run_id = re.search(r"run (r-\S+):", answer.out).group(1)  # type: ignore[union-attr]
    assert_sane(ctx.run(sim.config_path, "restore", "--env", "staging", "--run", run_id, "--yes"), code=0)
    assert host.env_file.is_symlink() and parse_env(shared.read_bytes()).flags() == ALL_ON


@kind("env file", "directory")
def env_directory(ctx) -> None:
    config = _env_variant(ctx, ctx.tmp)
    assert_sane(ctx.run(config, "plan", "quick", "--env", "staging"), code=1, says=(f"{ctx.tmp} is a directory",))


@kind("env file", "too big")
def env_too_big(ctx) -> None:
    """A 17 MB env file (something appended a log to it)."""
    big = ctx.tmp / ".env.big"
    with open(big, "wb") as fh:
        fh.write(f"{ADVANCED}=true\n".encode())
        fh.write(b"# x\n" * (17 * 1024 * 1024 // 4))
    config = _env_variant(ctx, big)
    assert_sane(ctx.run(config, "plan", "quick", "--env", "staging"), code=1, says=(f"{big} is larger than",))


@kind("env file", "missing")
def env_missing(ctx) -> None:
    missing = ctx.tmp / ".env.gone"
    config = _env_variant(ctx, missing)
    with Unchanged(ctx.sim):
        answer = ctx.run(config, "rollback", "quick", "--env", "staging", "--yes")
    assert_sane(answer, code=2, says=(f"cannot read {missing}: No such file or directory", "nothing was changed"))


@kind("env file", "character device")
def env_device(ctx) -> None:
    """/dev/zero as the env file."""
    config = _env_variant(ctx, "/dev/zero")
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
    run_id = re.search(r"run (r-\S+):", answer.out).group(1)  # type: ignore[union-attr]
    assert_sane(ctx.run(sim.config_path, "restore", "--env", "staging", "--run", run_id, "--yes"), code=0)
    assert host.env_file.read_bytes() == original


# --- logs -----------------------------------------------------------------------------------


def _log_variant(ctx, log_file: Path | str) -> Path:
    return ctx.config(set_key(ctx.sim.config_path.read_text(), "staging", "log_file", _j(log_file)))


@kind("log", "named pipe")
def log_fifo(ctx) -> None:
    """A named pipe as the service log: `check` and `status` answer (once they hung for good)."""
    fifo = ctx.fifo("staging.log")
    config = _log_variant(ctx, fifo)
    said = f"{fifo} is a named pipe (FIFO), not a regular file"
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(said,))
    assert_sane(ctx.run(config, "status", "staging"), code=(0, 1), says=(said,))


@kind("log", "character device")
def log_device(ctx) -> None:
    config = _log_variant(ctx, "/dev/zero")
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=("/dev/zero is a character device",))


@kind("log", "directory")
def log_directory(ctx) -> None:
    config = _log_variant(ctx, ctx.tmp)
    assert_sane(ctx.run(config, "check", "staging"), code=1, says=(f"{ctx.tmp} is a directory",))


@kind("log", "missing")
def log_missing(ctx) -> None:
    missing = ctx.tmp / "gone.log"
    config = _log_variant(ctx, missing)
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
    text = set_key(text, "staging", "log_command", _j("printf 'a\\000b\\033[2J\\n\\377\\n'"))
    config = ctx.config(text)
    assert_sane(ctx.run(config, "status", "staging"), code=(0, 1))


# --- the journal ----------------------------------------------------------------------------


def _journal_with(ctx, *lines: bytes):
    """A fresh simulation with one real run in its journal, then ``lines`` appended."""
    sim = ctx.fresh()
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "first")
    assert answer.code == 0, answer
    run_id = re.search(r"run (r-\S+):", answer.out).group(1)  # type: ignore[union-attr]
    journal = sim.directory / "journal.jsonl"
    before = journal.read_bytes().count(b"\n")
    with open(journal, "ab") as fh:
        for line in lines:
            fh.write(line + b"\n")
    return sim, run_id, before + 1


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
    sim, run_id, bad = _journal_with(ctx, b"[" * 100_000 + b"]" * 100_000)
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
    sim, run_id, bad = _journal_with(ctx, b'{"seq":' + b"9" * 10 + b',"x":"' + b"A" * 6_000_000 + b'"}')
    _readers_survive(ctx, sim, run_id, bad, "more than the 4194304 allowed")


@kind("journal", "NaN in a record")
def journal_nan(ctx) -> None:
    """A record holding NaN (not JSON, though Python would read it)."""
    sim, run_id, bad = _journal_with(ctx, b'{"seq":99,"ts":"x","type":"note","data":{"v":NaN},"prev":"0","hash":"0"}')
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
    sim, run_id, bad = _journal_with(ctx, json.dumps(record).encode())
    _readers_survive(ctx, sim, run_id, bad, "not a record's fields and types")


@kind("journal", "binary garbage line")
def journal_binary(ctx) -> None:
    sim, run_id, bad = _journal_with(ctx, b"\x00\xff\xfe\x1b[2J garbage \x9b")
    _readers_survive(ctx, sim, run_id, bad, "not UTF-8")


@kind("journal", "5000-digit number")
def journal_long_number(ctx) -> None:
    """An integer Python refuses to parse (over 4300 digits)."""
    sim, run_id, bad = _journal_with(ctx, b'{"seq":' + b"1" * 5000 + b"}")
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
    run_id = re.search(r"run (r-\S+):", answer.out).group(1)  # type: ignore[union-attr]
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
    run_id = re.search(r"run (r-\S+):", answer.out).group(1)  # type: ignore[union-attr]
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
    run_id = re.search(r"run (r-\S+):", answer.out).group(1)  # type: ignore[union-attr]
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
    sim, _, _ = _journal_with(ctx, json.dumps(record).encode())
    assert_sane(ctx.run(sim.config_path, "history"), code=0, says=("bad \\ud800 byte \\x1b[2J",))
    assert_sane(ctx.run(sim.config_path, "history", "--json"), code=0, says=("bad \ufffd byte",))
    assert_sane(ctx.run(sim.config_path, "report", "r-20250101-000000-dead"), code=0)


# --- command-line arguments -----------------------------------------------------------------


def _wait_case(ctx, value: str) -> None:
    sim = ctx.sim
    with Unchanged(sim):
        answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", value)
    assert_sane(answer, code=2, says=("argument --wait: must be between 0 and 86400 seconds", repr(value)))


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
    return sim.config_path, re.search(r"run (r-\S+):", answer.out).group(1)  # type: ignore[union-attr]


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
    assert_sane(answer, code=2, says=("invalid choice: 'reboot-everything'",))


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


# --- the console (Pilot, 80×24) -------------------------------------------------------------


def _console(ctx, config: Path, keys: tuple[str, ...], *, wait_for: str | None = None) -> str:
    """Open the real console on ``config``, press ``keys``, return the text of every screen
    seen, and quit with q: the console must stay alive and leave within the deadline."""
    from console.config import load_config
    from screens.app import RollbackConsole
    from tests.canary_support import screen_text

    async def go() -> str:
        app = RollbackConsole(load_config(config))
        seen = []
        async with asyncio.timeout(60):
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause(0.5)
                for key in keys:
                    await pilot.press(key)
                    await pilot.pause(0.3)
                    seen.append(screen_text(app))
                if wait_for:
                    for _ in range(100):
                        if wait_for in screen_text(app):
                            break
                        await pilot.pause(0.1)
                seen.append(screen_text(app))
                await pilot.press("q")
                await pilot.pause(0.2)
        return "\n".join(seen)

    return asyncio.run(go())


def _assert_screen(text: str, *says: str) -> None:
    for phrase in says:
        assert phrase in text, f"{phrase!r} not on screen:\n{text[-3000:]}"
    raw = re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", text)
    assert raw is None, f"a raw {raw.group()!r} on screen"


@kind("console", "named pipe as the password file")
def console_password_fifo(ctx) -> None:
    """The console with a FIFO password file: it opens, says why the login fails, and q quits
    (it once ignored q and Ctrl-C for minutes, both processes blocked in open())."""
    fifo = ctx.fifo("password")
    config = _with_password_file(ctx, fifo)
    text = _console(ctx, config, ("enter",), wait_for="cannot read secret file")
    _assert_screen(text, "cannot read secret file")  # the reason is cut to the column's width


@kind("console", "named pipe as the log")
def console_log_fifo(ctx) -> None:
    """The console with a FIFO log: the panel says so; the env file and process readings
    still come (they once went to "?" as the worker's threads blocked one by one)."""
    fifo = ctx.fifo("staging.log")
    config = _log_variant(ctx, fifo)
    text = _console(ctx, config, ("enter",), wait_for="named pipe")
    _assert_screen(text, "named pipe")


@kind("console", "nested JSON in the journal")
def console_nested_journal(ctx) -> None:
    """`h` with a deeply nested journal line: the history opens (it died with RecursionError)."""
    sim, run_id, _ = _journal_with(ctx, b"[" * 100_000 + b"]" * 100_000)
    text = _console(ctx, sim.config_path, ("h",), wait_for=run_id[:12])
    _assert_screen(text, "1 run(s) in", "1 journal problem(s)", run_id[:12])


@kind("console", "escapes and markup in a reason")
def console_reason_markup(ctx) -> None:
    """A reason with escapes and markup (`[b]`, `[database]`): the history shows it as typed."""
    sim = ctx.fresh()
    reason = "[b]bold[/b] [database] \x1b[2J\u202eevil"
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", reason)
    assert answer.code == 0, answer
    text = _console(ctx, sim.config_path, ("h",), wait_for="[database]")
    _assert_screen(text, "[b]bold[/b] [database] \\x1b[2J\\u202eevil")


@kind("console", "FIFO env file and the Database tab")
def console_env_fifo(ctx) -> None:
    """A FIFO env file: the focused view says so; the Database tab of an environment
    without a database reads "no [database] section" (the tag was eaten as markup)."""
    fifo = ctx.fifo(".env.staging")
    text = ctx.sim.config_path.read_text()
    text = set_key(text, "staging", "env_file", _j(fifo))
    text = re.sub(r"(?ms)^\[environments\.staging\.database\].*?(?=^\[|\Z)", "", text)
    config = ctx.config(text)
    shown = _console(ctx, config, ("enter",), wait_for="named pipe")
    _assert_screen(shown, "named pipe")
