"""One rollback per environment at a time, held on the target host.

The lock is a directory, ``{lock_dir}/rollback-console-{env}.lock``, made with ``mkdir``
(atomic on every POSIX filesystem) on the host itself, so two operators on two different
bastions conflict just like two on the same one. Inside it, ``owner.json`` says who holds
it; its mtime is the heartbeat. Everything goes through ``Transport.run`` as plain shell,
so the same code works locally and over SSH, and times come from the host's clock, so
bastions with skewed clocks still agree on how old a heartbeat is.

A lock whose heartbeat stopped is *stale*: it is reported as such, never broken
automatically. ``break_lock`` breaks it deliberately and returns what it broke, for the
journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import shlex
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from console.config.model import Environment
from console.lock.info import (
    DEFAULT_STALE_AFTER_S,
    BrokenLock,
    LockError,
    LockHeld,
    LockHolder,
    LockInfo,
    LockLost,
    format_utc,
)
from console.transport.base import CommandResult, Transport, TransportError

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL_S = 10.0
DEFAULT_COMMAND_TIMEOUT_S = 15.0
OWNER_WAIT_S = 1.0  # how long a lock just taken by another console may go without owner.json
OWNER_FILE = "owner.json"
MAX_OWNER_BYTES = 64 * 1024


_TS = re.compile(r"^(\d+)(?:\.(\d+))?$")


def _parse_ts(text: str) -> float | None:
    """``date +%s.%N`` output; a shell without %N support gives just the seconds."""
    match = _TS.match(text.strip())
    if not match:
        head = text.strip().split(".")[0]
        return float(head) if head.isdigit() else None
    return float(f"{match.group(1)}.{match.group(2) or 0}")


def _safe_name(env: str) -> str:
    # Environment names come from config; keep the path one plain component whatever they hold.
    return re.sub(r"[^A-Za-z0-9._-]", "_", env) or "_"


# Prints the state of the lock directory "$P": present/absent, host now, dir mtime,
# owner.json mtime (or "-"), a separator, then owner.json itself.
_INFO_SCRIPT = (
    'if [ -d "$P" ]; then echo present; date +%s.%N; date -r "$P" +%s.%N; '
    f'if [ -f "$P/{OWNER_FILE}" ]; then date -r "$P/{OWNER_FILE}" +%s.%N; echo ---; '
    f'head -c {MAX_OWNER_BYTES} "$P/{OWNER_FILE}"; '
    "else echo -; echo ---; fi; "
    "else echo absent; fi"
)


class EnvironmentLock:
    """The rollback lock of one environment, on one host.

    For a fleet, every console must pick the same host: use the environment's first one.
    """

    def __init__(
        self,
        environment: str,
        lock_dir: str,
        transport: Transport,
        holder: LockHolder,
        *,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
    ) -> None:
        self.environment = environment
        self.lock_dir = lock_dir
        self.transport = transport
        self.holder = holder
        self.stale_after_s = stale_after_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.command_timeout_s = command_timeout_s
        self.token: str | None = None  # set while we hold it
        self.lost: str | None = None  # why the heartbeat found the lock gone, if it did
        self.heartbeat_error: str | None = None  # last transient heartbeat failure
        self.release_error: str | None = None  # set by held() when releasing failed
        self._dir: str | None = None  # lock_dir with ~ resolved on the host

    @classmethod
    def for_environment(
        cls, environment: Environment, transport: Transport, holder: LockHolder, **options: Any
    ) -> EnvironmentLock:
        """The lock of a configured environment, on the host ``transport`` reaches."""
        lock_dir = environment.expand(environment.lock_dir, transport.host)
        return cls(environment.name, lock_dir, transport, holder, **options)

    @property
    def name(self) -> str:
        return f"rollback-console-{_safe_name(self.environment)}.lock"

    @property
    def path(self) -> str:
        return f"{(self._dir or self.lock_dir).rstrip('/') or ''}/{self.name}"

    @property
    def where(self) -> str:
        return f"{self.path} on {self.transport.where}"

    # ------------------------------------------------------------------ helpers

    async def _run(self, script: str, doing: str) -> CommandResult:
        try:
            result = await self.transport.run_short(script, timeout=self.command_timeout_s)
        except TransportError as exc:
            raise LockError(f"cannot {doing} {self.where}: {exc}") from None
        if not result.ok:
            detail = result.stderr.strip()[-500:] or result.summary()
            raise LockError(f"cannot {doing} {self.where}: shell failed ({result.summary()}): {detail}")
        return result

    async def _resolve_dir(self) -> str:
        if self._dir is not None:
            return self._dir
        lock_dir = self.lock_dir
        if lock_dir == "~" or lock_dir.startswith("~/"):
            home = (await self._run('printf %s "$HOME"', "find the home directory for")).stdout.strip()
            lock_dir = home + lock_dir[1:]
        if not lock_dir.startswith("/"):
            raise LockError(
                f"lock_dir {self.lock_dir!r} of environment {self.environment!r} must be an absolute path "
                f"on {self.transport.where}"
            )
        self._dir = lock_dir.rstrip("/") or "/"
        return self._dir

    def _vars(self, **extra: str) -> str:
        """Shell assignments, every value quoted."""
        values = {"D": self._dir or self.lock_dir, "L": self.path, **extra}
        return "".join(f"{key}={shlex.quote(value)}; " for key, value in values.items())

    def _grave(self) -> str:
        # A unique name beside the lock: renaming into it makes the lock vanish in one step.
        return f"{self.path}.gone-{secrets.token_hex(6)}"

    def _parse_info(self, stdout: str, path: str) -> LockInfo | None:
        head, sep, owner_text = stdout.partition("---\n")
        lines = head.split("\n")
        if not lines or lines[0].strip() != "present":
            return None
        if not sep or len(lines) < 4:
            raise LockError(
                f"cannot read the lock {path} on {self.transport.where}: unexpected output {stdout[:200]!r}"
            )
        now = _parse_ts(lines[1]) or time.time()
        dir_mtime = _parse_ts(lines[2]) or now
        owner_mtime = _parse_ts(lines[3]) if lines[3].strip() != "-" else None
        owner: dict[str, Any] = {}
        problem: str | None = None
        if owner_mtime is not None:
            try:
                loaded = json.loads(owner_text)
                if not isinstance(loaded, dict):
                    raise ValueError("not a JSON object")
                owner = loaded
            except ValueError as exc:
                problem = f"unreadable: {exc}"
        complete = owner_mtime is not None and problem is None

        def text(key: str) -> str | None:
            value = owner.get(key)
            return str(value) if value not in (None, "") else None

        acquired = owner.get("acquired_at")
        pid = owner.get("pid")
        return LockInfo(
            environment=self.environment,
            host=self.transport.where,
            path=path,
            user=text("user"),
            ssh_client=text("ssh_client"),
            bastion=text("bastion"),
            pid=pid if isinstance(pid, int) else None,
            run_id=text("run_id"),
            token=text("token"),
            acquired_at=float(acquired) if isinstance(acquired, int | float) else dir_mtime,
            heartbeat_at=owner_mtime if owner_mtime is not None else dir_mtime,
            checked_at=now,
            stale_after_s=self.stale_after_s,
            complete=complete,
            problem=problem,
        )

    # ------------------------------------------------------------------- public

    async def inspect(self) -> LockInfo | None:
        """The lock as it is now on the host, or None when nobody holds it."""
        await self._resolve_dir()
        result = await self._run(self._vars(P=self.path) + _INFO_SCRIPT, "inspect the lock")
        return self._parse_info(result.stdout, self.path)

    async def acquire(self) -> LockInfo:
        """Take the lock or raise: LockHeld (who holds it) or LockError (what is wrong where)."""
        if self.token is not None:
            raise LockError(f"this console already holds {self.where}")
        directory = await self._resolve_dir()
        script = self._vars() + (
            'if [ ! -e "$D" ]; then echo nodir; exit 0; fi; '
            'if [ ! -d "$D" ]; then echo notdir; exit 0; fi; '
            'if err=$(mkdir -m 755 "$L" 2>&1); then echo acquired; date +%s.%N; exit 0; fi; '
            'if [ -d "$L" ]; then echo held; exit 0; fi; '
            "echo failed; id -un 2>/dev/null || echo '?'; printf '%s\\n' \"$err\""
        )
        for _attempt in range(3):
            result = await self._run(script, "take the lock")
            lines = result.stdout.split("\n")
            status = lines[0].strip()
            config_hint = f"(config: environments.{self.environment}.lock_dir)"
            if status == "nodir":
                raise LockError(
                    f"cannot take the rollback lock: lock_dir {directory} does not exist on "
                    f"{self.transport.where} {config_hint}"
                )
            if status == "notdir":
                raise LockError(
                    f"cannot take the rollback lock: lock_dir {directory} on {self.transport.where} "
                    f"is not a directory {config_hint}"
                )
            if status == "failed":
                user = lines[1].strip() if len(lines) > 1 else "?"
                detail = " ".join(line.strip() for line in lines[2:] if line.strip())
                raise LockError(
                    f"cannot take the rollback lock {self.path} on {self.transport.where}: {detail}. "
                    f"lock_dir {directory} must be writable by {user} there {config_hint}"
                )
            if status == "acquired":
                host_now = _parse_ts(lines[1]) if len(lines) > 1 else None
                return await self._claim(host_now or time.time())
            if status == "held":
                info = await self._settled()
                if info is not None:
                    raise LockHeld(info)
                continue  # released between our mkdir and our look: try again
            raise LockError(f"cannot take the lock {self.where}: unexpected output {result.stdout[:200]!r}")
        raise LockError(f"cannot take the lock {self.where}: it keeps changing hands; try again")

    async def _settled(self) -> LockInfo | None:
        """The lock as found; if its taker is still writing owner.json, wait a moment for it,
        so that the refusal can name the holder (two consoles started at the same time)."""
        deadline = time.monotonic() + OWNER_WAIT_S
        while True:
            info = await self.inspect()
            if info is None or info.complete or info.stale or info.problem or time.monotonic() >= deadline:
                return info
            await asyncio.sleep(0.05)

    async def _claim(self, acquired_at: float) -> LockInfo:
        """The directory is ours: write who we are, or undo the mkdir."""
        token = secrets.token_hex(16)
        owner = {
            "tool": "rollback-console",
            "environment": self.environment,
            "token": token,
            "user": self.holder.user,
            "ssh_client": self.holder.ssh_client,
            "bastion": self.holder.bastion,
            "pid": self.holder.pid,
            "run_id": self.holder.run_id,
            "acquired_at": acquired_at,
            "acquired_at_utc": format_utc(acquired_at),
        }
        owner_path = f"{self.path}/{OWNER_FILE}"
        try:
            try:
                await self.transport.write_file_atomic(
                    owner_path, json.dumps(owner, indent=2).encode() + b"\n", backup_path=None
                )
            except TransportError as exc:
                raise LockError(f"cannot write {owner_path} on {self.transport.where}: {exc}") from None
            # Readable by other operators' accounts, so they can see who holds it.
            result = await self._run(
                self._vars(T=token)
                + f'chmod 644 "$L/{OWNER_FILE}"; if grep -qF "$T" "$L/{OWNER_FILE}"; then echo ok; else echo lost; fi',
                "confirm the lock",
            )
            if result.stdout.strip() != "ok":
                raise LockLost(f"the lock {self.where} was broken while it was being taken; try again")
        except BaseException:
            # Shielded: even when cancelled, do not leave a half-taken lock behind.
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._remove_if_ours(token, allow_unowned=True))
            raise
        self.token = token
        self.lost = None
        return LockInfo(
            environment=self.environment,
            host=self.transport.where,
            path=self.path,
            user=self.holder.user,
            ssh_client=self.holder.ssh_client,
            bastion=self.holder.bastion,
            pid=self.holder.pid,
            run_id=self.holder.run_id,
            token=token,
            acquired_at=acquired_at,
            heartbeat_at=acquired_at,
            checked_at=acquired_at,
            stale_after_s=self.stale_after_s,
            complete=True,
        )

    async def _remove_if_ours(self, token: str, *, allow_unowned: bool = False) -> str:
        """Remove the lock directory only if owner.json carries ``token``.

        Returns "released", "absent" or "other". The check and the rename run in one shell
        command on the host, so a lock broken and re-taken by someone else is left alone.
        """
        owner = f'"$L/{OWNER_FILE}"'
        unowned = f"[ ! -e {owner} ] || " if allow_unowned else ""
        script = self._vars(T=token, G=self._grave()) + (
            'if [ ! -d "$L" ]; then echo absent; '
            f'elif {unowned}grep -qF "$T" {owner} 2>/dev/null; then '
            'if err=$(mv "$L" "$G" 2>&1); then rm -rf "$G"; echo released; else echo failed; '
            "printf '%s\\n' \"$err\"; fi; "
            "else echo other; fi"
        )
        result = await self._run(script, "release the lock")
        status, _, detail = result.stdout.partition("\n")
        if status.strip() == "failed":
            raise LockError(f"cannot release the lock {self.where}: {detail.strip()}")
        return status.strip()

    async def heartbeat(self) -> None:
        """Show we are alive (touch owner.json). LockLost if the lock is no longer ours."""
        if self.token is None:
            raise LockError(f"heartbeat on {self.where}, which this console does not hold")
        script = self._vars(T=self.token) + (
            f'if grep -qF "$T" "$L/{OWNER_FILE}" 2>/dev/null; then '
            f'err=$(touch -c "$L/{OWNER_FILE}" 2>&1) && echo ok || {{ echo failed; printf "%s\\n" "$err"; }}; '
            "else echo lost; fi"
        )
        result = await self._run(script, "refresh the heartbeat of")
        status, _, detail = result.stdout.partition("\n")
        if status.strip() == "ok":
            return
        if status.strip() == "lost":
            self.token = None
            try:
                now = await self.inspect()
                after = f"; it is now held by {now.holder}" if now is not None else "; nobody holds it now"
            except LockError:
                after = ""
            raise LockLost(f"the lock {self.where} was broken by someone else{after}")
        raise LockError(f"cannot refresh the heartbeat of {self.where}: {detail.strip() or result.stdout[:200]}")

    async def release(self) -> bool:
        """Give the lock back. False if it was no longer ours (broken, maybe re-taken): left alone."""
        if self.token is None:
            return False
        token = self.token
        status = await self._remove_if_ours(token)
        self.token = None
        if status != "released":
            logger.warning("lock %s was no longer ours at release (%s); left alone", self.where, status)
        return status == "released"

    async def break_lock(self, reason: str, *, expected_token: str | None = None) -> BrokenLock | None:
        """Break the lock deliberately, whoever holds it. Returns what was broken (None: no lock).

        ``expected_token``: the token of the LockInfo the operator looked at; if the lock has
        changed hands since, nothing is broken and LockError says so.
        """
        if not reason or not reason.strip():
            raise LockError(f"breaking the lock {self.where} needs a reason (it goes into the journal)")
        await self._resolve_dir()
        grave = self._grave()
        expect = (
            f'if ! grep -qF "$T" "$L/{OWNER_FILE}" 2>/dev/null; then echo changed; exit 0; fi; '
            if expected_token
            else ""
        )
        script = self._vars(T=expected_token or "", G=grave, P=grave) + (
            'if [ ! -d "$L" ]; then echo absent; exit 0; fi; '
            + expect
            + 'if ! err=$(mv "$L" "$G" 2>&1); then echo failed; printf "%s\\n" "$err"; exit 0; fi; '
            + "echo moved; "
            + _INFO_SCRIPT
            + '; rm -rf "$G"'
        )
        result = await self._run(script, "break the lock")
        status, _, rest = result.stdout.partition("\n")
        status = status.strip()
        if status == "absent":
            return None
        if status == "changed":
            now = await self.inspect()
            holder = now.holder if now is not None else "nobody"
            raise LockError(
                f"the lock {self.where} changed hands since you looked (now: {holder}); nothing was broken. "
                "Look again before breaking it."
            )
        if status == "failed":
            raise LockError(f"cannot break the lock {self.where}: {rest.strip()}")
        info = self._parse_info(rest, self.path)
        if info is None:
            raise LockError(f"cannot break the lock {self.where}: unexpected output {result.stdout[:200]!r}")
        if self.token is not None and info.token == self.token:
            self.token = None
        # The caller says it (unlock prints it; a take-over is reported in its own words).
        return BrokenLock(info=info, reason=reason.strip(), broken_by=self.holder, broken_at=info.checked_at)

    @contextlib.asynccontextmanager
    async def held(
        self, on_lost: Callable[[str], None] | None = None, *, acquire: bool = True
    ) -> AsyncIterator[EnvironmentLock]:
        """Acquire, heartbeat every ``heartbeat_interval_s`` while inside, release on any exit.

        ``on_lost`` is called once with the reason if the heartbeat finds the lock broken.
        A failed release does not mask the body's outcome: it is kept in ``release_error``.
        ``acquire=False``: the lock is already taken (``acquire()``); only hold and release it.
        """
        if acquire:
            await self.acquire()
        elif self.token is None:
            raise LockError(f"{self.where} is not held by this console")
        task = asyncio.create_task(self._heartbeat_loop(on_lost), name=f"lock-heartbeat-{self.environment}")
        try:
            yield self
        finally:
            task.cancel()
            try:
                # wait() neither raises the task's outcome nor swallows a cancellation of ours.
                await asyncio.wait([task], timeout=self.command_timeout_s)
            finally:
                await self._release_for_held()

    async def _release_for_held(self) -> None:
        if self.token is None:
            return
        try:
            # Shielded: a cancelled run must still give the lock back.
            await asyncio.shield(self.release())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.release_error = str(exc)
            logger.warning("could not release %s: %s", self.where, exc)

    async def _heartbeat_loop(self, on_lost: Callable[[str], None] | None) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            try:
                await self.heartbeat()
                self.heartbeat_error = None
            except LockLost as exc:
                self.lost = str(exc)
                logger.warning("%s", exc)
                if on_lost is not None:
                    on_lost(str(exc))
                return
            except LockError as exc:
                # A passing network hiccup: keep trying; the lock only goes stale after a while.
                self.heartbeat_error = str(exc)
                logger.warning("heartbeat failed: %s", exc)
