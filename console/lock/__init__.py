"""One rollback per environment at a time, held on the target host (see environment.py)."""

from console.lock.environment import (
    DEFAULT_COMMAND_TIMEOUT_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    OWNER_FILE,
    EnvironmentLock,
)
from console.lock.info import (
    DEFAULT_STALE_AFTER_S,
    BrokenLock,
    LockError,
    LockHeld,
    LockHolder,
    LockInfo,
    LockLost,
    describe_holder,
    format_ago,
    format_utc,
)

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT_S",
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_STALE_AFTER_S",
    "OWNER_FILE",
    "BrokenLock",
    "EnvironmentLock",
    "LockError",
    "LockHeld",
    "LockHolder",
    "LockInfo",
    "LockLost",
    "describe_holder",
    "format_ago",
    "format_utc",
]
