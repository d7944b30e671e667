"""Bad-input kinds: the config file, and the hosts it names."""

from __future__ import annotations

import re
from pathlib import Path

import asyncssh

from tests.hostile.support import MINIMAL, Unchanged, assert_sane, kind, toml_path

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
        config = ctx.config(
            re.sub(r"(?m)^known_hosts = .*$", f"known_hosts = {toml_path(known)}", text), f"{known.name}.toml"
        )
        assert_sane(
            ctx.run(config, "plan", "quick", "--env", "staging"), code=1, says=(said, sshd.host_key_fingerprint)
        )
        with Unchanged(sim):
            answer = ctx.run(config, "rollback", "quick", "--env", "staging", "--yes")
        assert_sane(answer, code=2, says=(said, "nothing was changed"))
