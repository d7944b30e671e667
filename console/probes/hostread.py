"""Reading a service's host: its pid, its process (environment and memory), its log.

The pieces a probe round and a plan's steps share. Over SSH, a round reads the pid and the
log in one command (``read_process_and_log``), in the shell kept open on the host
(``Transport.run_short``); on this machine each is a process of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

from console.config.model import Environment, Host
from console.probes import logs
from console.profile import profile_of
from console.transport.base import CommandResult, Transport, TransportError

LOG_LINES_FOR_FLAGS = 1000  # how far back to look for the last flag line


@dataclasses.dataclass(frozen=True)
class SinceLog:
    """Validation's read of each host's log: what was written after ``offset(host)`` (the
    restart), judged like the last lines; None: no such point, read the last lines.
    ``seen(host, read)`` is told what came back."""

    offset: Callable[[Host], int | None]
    seen: Callable[[Host, logs.LogRead], None]
    what: str = "the log since the restart"
    timeout_s: float = 15.0


class NotRunning(TransportError):
    """The pid command found no service process (the host itself answered)."""


async def read_pid(env: Environment, host: Host, transport: Transport, timeout: float) -> int:
    result = await transport.run_short(env.expand(env.pid_command, host), timeout=timeout)
    return pid_of(result, transport.where)


def pid_of(result: CommandResult, where: str) -> int:
    """The pid the pid command printed; NotRunning (saying what it said) when there is none.
    A pid command that did not finish says nothing about the service: TransportError."""
    if result.timed_out:
        raise TransportError(f"{where}: the pid command did not answer ({result.summary()})")
    text = result.stdout.strip().split()
    if not result.ok or not text or not text[0].isdigit() or int(text[0]) == 0:
        detail = (result.stderr.strip() or result.stdout.strip() or result.summary())[:200]
        raise NotRunning(f"{where}: service not running (pid command: {detail})")
    return int(text[0])


async def read_log_window(
    env: Environment, host: Host, transport: Transport, lines: int, window: int, timeout: float
) -> logs.LogRead:
    """The last ``lines`` whole lines of the service log, judged on the host; the last
    ``window`` of them come back (and the last flag line before them)."""
    source, what, partial_ok = log_source(env, host, lines)
    rules = logs.rules_for(profile_of(env).log)
    return await logs.read_lines(
        transport, source, window, rules=rules, timeout=timeout, what=what, partial_ok=partial_ok
    )


def log_source(env: Environment, host: Host, lines: int) -> tuple[str, str, bool]:
    """(shell that writes the log's last ``lines`` lines, what it reads, whether a failed
    source that printed lines is still read: a log command's)."""
    if env.log_file:
        path = env.expand(env.log_file, host)
        return logs.file_source(path, lines), f"the log {path}", False
    assert env.log_command
    command = env.expand(env.log_command, host)
    return logs.command_source(command, lines), f"the log command {command!r}", True


Process = tuple[int, dict[str, str], int | None]  # (pid, environment, RSS in bytes)
T = TypeVar("T")


async def bounded(coro: Awaitable[T], where: str, what: str, limit: float) -> T | TransportError:
    """The read's result, or the TransportError that says why there is none (its own, or that
    it took longer than ``limit``): a probe round reports one failed read, it does not stop."""
    try:
        return await asyncio.wait_for(coro, limit)
    except TimeoutError:
        return TransportError(f"{where}: {what} took longer than {limit:.0f}s")
    except TransportError as exc:
        return exc


async def read_process(pid: int, transport: Transport) -> Process:
    environ, rss = await asyncio.gather(transport.process_environ(pid), transport.process_rss(pid))
    return pid, environ, rss


async def read_process_alone(env: Environment, host: Host, transport: Transport, timeout: float) -> Process:
    """The pid command, then the process it names: on this machine, beside the HTTP probes."""
    pid = pid_of(await transport.run_short(env.expand(env.pid_command, host), timeout=timeout), transport.where)
    return await read_process(pid, transport)


def says_flags(env: Environment, read: logs.LogRead) -> bool:
    profile = profile_of(env)
    return logs.rules_for(profile.log).latest_flags(read.with_flag_line, profile.flags) is not None


async def read_process_and_log(
    env: Environment,
    host: Host,
    transport: Transport,
    *,
    timeout: float,
    window: int,
    process: Process | TransportError | None,
    since_log: SinceLog | None = None,
) -> tuple[Process | TransportError, logs.LogRead | TransportError]:
    """The log's last lines (``window`` of them judged) and, unless ``process`` was already
    read, the pid command in the same session (one process tree on the host, not two), then
    the process it names. With ``since_log`` the log is read from its point on; with no flag
    line in that, or when it cannot be read, the whole log's last lines are read as well."""
    offset = since_log.offset(host) if since_log is not None and env.log_file else None
    if since_log is not None and offset is not None:
        source = logs.since_source(env.expand(env.log_file, host), offset)
        what, partial_ok, limit = since_log.what, False, max(timeout, since_log.timeout_s)
    else:
        source, what, partial_ok = log_source(env, host, max(LOG_LINES_FOR_FLAGS, window))
        limit = timeout
    rules = logs.rules_for(profile_of(env).log)
    where = transport.where
    process_r: Process | TransportError
    log_r: logs.LogRead | TransportError
    if process is not None:
        process_r = process
        log_r = await bounded(
            logs.read_lines(transport, source, window, rules=rules, timeout=limit, what=what, partial_ok=partial_ok),
            where,
            "reading the log",
            limit,
        )
    else:
        pid_command = env.expand(env.pid_command, host)
        both = await bounded(
            logs.read_lines_after(
                transport, pid_command, source, window, rules=rules, timeout=limit, what=what, partial_ok=partial_ok
            ),
            where,
            "reading the pid and the log",
            limit,
        )
        if isinstance(both, TransportError):
            process_r = log_r = both
        else:
            pid_result, log_r = both
            try:
                pid = pid_of(pid_result, where)
            except TransportError as exc:  # NotRunning, or a pid command that did not finish
                process_r = exc
            else:
                process_r = await bounded(read_process(pid, transport), where, "reading the process", timeout)
    if since_log is not None and offset is not None:
        if isinstance(log_r, logs.LogRead):
            since_log.seen(host, log_r)
        if isinstance(log_r, Exception) or not says_flags(env, log_r):
            # Unreadable (rotated), or no flag line since then: the whole log's last lines may have one.
            log_r = await bounded(
                read_log_window(env, host, transport, max(LOG_LINES_FOR_FLAGS, window), window, timeout),
                where,
                "reading the log",
                timeout,
            )
    return process_r, log_r
