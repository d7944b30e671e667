"""Who holds an environment's rollback lock, since when, and whether it looks stale."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_STALE_AFTER_S = 120.0


class LockError(RuntimeError):
    """The lock could not be taken, refreshed, released or broken; the message says where."""


class LockHeld(LockError):
    """Someone else holds the lock. ``info`` says who, since when, and whether it looks stale."""

    def __init__(self, info: LockInfo) -> None:
        self.info = info
        super().__init__(info.describe())


class LockLost(LockError):
    """The lock we held is no longer ours: someone broke it (and maybe took it)."""


@dataclass(frozen=True)
class LockHolder:
    """Who takes the lock: shown to anyone the lock turns away."""

    user: str
    ssh_client: str | None  # the operator's address as the bastion saw it ($SSH_CLIENT)
    bastion: str  # the machine the console runs on
    pid: int
    run_id: str | None = None

    @classmethod
    def current(cls, run_id: str | None = None) -> LockHolder:
        """This console process: login user, $SSH_CLIENT's address, hostname, pid."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = f"uid {os.getuid()}"
        ssh = os.environ.get("SSH_CLIENT") or os.environ.get("SSH_CONNECTION") or ""
        return cls(
            user=user,
            ssh_client=ssh.split()[0] if ssh.split() else None,
            bastion=socket.gethostname(),
            pid=os.getpid(),
            run_id=run_id,
        )

    def describe(self) -> str:
        return describe_holder(self.user, self.bastion, self.ssh_client, self.run_id, self.pid)


def describe_holder(
    user: str | None, bastion: str | None, ssh_client: str | None, run_id: str | None, pid: int | None
) -> str:
    """``alice@bastion-1 (ssh client 10.0.0.5, run R, pid 42)``."""
    who = f"{user or 'unknown user'}@{bastion or 'unknown host'}"
    details = [f"ssh client {ssh_client}" if ssh_client else "local session"]
    details.append(f"run {run_id}" if run_id else "no run id")
    if pid is not None:
        details.append(f"pid {pid}")
    return f"{who} ({', '.join(details)})"


def format_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min ago"


@dataclass(frozen=True)
class LockInfo:
    """A lock as found on the host. Times are epoch seconds on the host's clock."""

    environment: str
    host: str  # Transport.where
    path: str
    user: str | None
    ssh_client: str | None
    bastion: str | None
    pid: int | None
    run_id: str | None
    token: str | None
    acquired_at: float
    heartbeat_at: float  # mtime of owner.json (of the directory while owner.json is missing)
    checked_at: float
    stale_after_s: float
    complete: bool  # owner.json present and readable
    problem: str | None = None  # why owner.json could not be read, if so

    @property
    def age_s(self) -> float:
        return max(0.0, self.checked_at - self.acquired_at)

    @property
    def silence_s(self) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, self.checked_at - self.heartbeat_at)

    @property
    def stale(self) -> bool:
        return self.silence_s > self.stale_after_s

    @property
    def holder(self) -> str:
        if not self.complete:
            return "an unknown holder (owner.json " + (self.problem or "missing") + ")"
        return describe_holder(self.user, self.bastion, self.ssh_client, self.run_id, self.pid)

    def describe(self) -> str:
        """The whole story for an operator who was just turned away."""
        where = f"{self.path} on {self.host}"
        if not self.complete and not self.stale and self.problem is None:
            return (
                f"environment {self.environment!r} is being locked by another console right now "
                f"(lock {where} created {format_ago(self.age_s)}, owner not written yet); try again in a moment"
            )
        text = (
            f"environment {self.environment!r} is locked: another rollback holds it — {self.holder} "
            f"since {format_utc(self.acquired_at)} ({format_ago(self.age_s)}); "
            f"last heartbeat {format_ago(self.silence_s)}. Lock: {where}."
        )
        if self.stale:
            text += (
                f" It looks STALE: no heartbeat for more than {self.stale_after_s:g} s, so that console "
                "probably died. It is not broken automatically: make sure that run is really gone, "
                "then break the lock deliberately (the break is journaled)."
            )
        else:
            text += f" Wait for that run to finish, or talk to {self.user or 'its holder'}."
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("token")  # an ownership proof: no use to a reader of the journal
        data.update(stale=self.stale, silence_s=round(self.silence_s, 1), acquired_at_utc=format_utc(self.acquired_at))
        return data


@dataclass(frozen=True)
class BrokenLock:
    """What ``break_lock`` removed, for the journal."""

    info: LockInfo
    reason: str
    broken_by: LockHolder
    broken_at: float  # host clock

    def describe(self) -> str:
        return (
            f"broke the lock of environment {self.info.environment!r} on {self.info.host} "
            f"held by {self.info.holder} since {format_utc(self.info.acquired_at)} "
            f"(last heartbeat {format_ago(self.info.silence_s)}); broken by {self.broken_by.describe()}: {self.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock": self.info.to_dict(),
            "reason": self.reason,
            "broken_by": asdict(self.broken_by),
            "broken_at_utc": format_utc(self.broken_at),
        }
