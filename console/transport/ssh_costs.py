"""Two things asyncssh does on every read or packet that the console pays for and does not use.

- **Keepalive.** asyncssh cancels its keepalive timer and makes a new one each time data
  arrives: a timer handle made and dropped per read, ≈ 2 % of the console's CPU over a
  50-host rollback (sampled on CPU time; bench/README.md, fleet.py, stop 30). ``lazy_keepalive`` keeps asyncssh's
  rule — a keepalive request only after ``keepalive_interval`` with nothing received, the
  connection lost after ``keepalive_count_max`` requests unanswered — with one timer that,
  when it fires while data arrived meanwhile, is set again for the rest of the interval.
- **Logging.** asyncssh formats each packet's log line (its name and size) and converts each
  debug message's arguments before the logger decides not to log them (≈ 5 % more).
  ``quiet_logging`` asks the logger first; what is logged, when it is, is unchanged.

Both reach into asyncssh's internals: where a version lacks what they use, they leave it as
it is (correct, only dearer).
"""

from __future__ import annotations

from typing import Any

_KEEPALIVE_PARTS = (
    "_reset_keepalive_timer",
    "_keepalive_timer_callback",
    "_set_keepalive_timer",
    "_cancel_keepalive_timer",
    "_keepalive_timer",
    "_keepalive_interval",
    "_auth_complete",
    "_loop",
)


def lazy_keepalive(conn: Any) -> None:
    """Make ``conn`` (an asyncssh connection, authenticated) note the time of each read instead
    of replacing its keepalive timer."""
    if not all(hasattr(conn, name) for name in _KEEPALIVE_PARTS):
        return
    loop = conn._loop
    fire = conn._keepalive_timer_callback  # asyncssh's own: count, give up or send a request
    last = [loop.time()]

    def reset() -> None:  # on every read
        if conn._auth_complete:
            last[0] = loop.time()
            if conn._keepalive_timer is None:
                conn._set_keepalive_timer()

    def due() -> None:
        quiet = loop.time() - last[0]
        if quiet < conn._keepalive_interval:  # data came meanwhile: not yet a silence to count
            conn._keepalive_timer = loop.call_later(conn._keepalive_interval - quiet, due)
        else:
            fire()  # sets the next timer through _set_keepalive_timer, which calls ``due``

    conn._reset_keepalive_timer = reset
    conn._keepalive_timer_callback = due
    # The timer running now calls asyncssh's callback: replace it with one that calls ``due``.
    if conn._keepalive_timer is not None:
        conn._cancel_keepalive_timer()
        conn._set_keepalive_timer()


_quieted = False


def quiet_logging() -> None:
    """Once per process: asyncssh's debug lines are built only when they will be logged."""
    global _quieted
    if _quieted:
        return
    _quieted = True
    try:
        from asyncssh.logging import SSHLogger
        from asyncssh.packet import SSHPacketLogger
    except ImportError:
        return
    log, log_packet = getattr(SSHLogger, "log", None), getattr(SSHPacketLogger, "_log_packet", None)
    if log is None or log_packet is None or not isinstance(getattr(SSHLogger, "_debug_level", None), int):
        return

    def checked_log(self: SSHLogger, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):  # what logging.LoggerAdapter.log asks first anyway
            log(self, level, msg, *args, **kwargs)

    def checked_log_packet(self: Any, *args: Any) -> None:
        # SSHLogger.packet logs only at debug level 3 and up (asyncssh.set_debug_level).
        if SSHLogger._debug_level >= 3:
            log_packet(self, *args)

    SSHLogger.log = checked_log  # type: ignore[method-assign]
    SSHPacketLogger._log_packet = checked_log_packet  # type: ignore[method-assign]
