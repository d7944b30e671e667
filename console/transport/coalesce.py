"""One send per SSH connection per turn of the event loop, not one per packet.

asyncssh writes each SSH packet to its socket as it makes it, and asyncio sends each write at
once: a syscall per packet, and on the host a wake-up of sshd per packet. Most of them go
out two or more to a connection within one turn of the loop: over a 50-host rollback, 15,666
writes fell in 7,127 (connection, turn) pairs. ``CoalescingWrites`` holds a connection's
writes until the loop's next turn and sends them as one, in order (bench/README, fleet.py,
stop 26, for what it saves).

Nothing is held longer than that; an abort drops what is held, as asyncio's own abort drops
its buffer; a close sends it first.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingWrites:
    """A stand-in for ``transport`` whose writes made in one turn of ``loop`` leave together."""

    def __init__(self, transport: asyncio.WriteTransport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._flush_due = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._held.append(bytes(data))
        if not self._flush_due:
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        # Whatever state the transport is in by then, it gets what it would have got, in
        # one piece: asyncio itself decides what a closing or lost connection does with it.
        self._flush_due = False
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, is_closing, … as the transport's
        return getattr(self._transport, name)


def coalesce(conn: object) -> None:
    """Make ``conn`` (an asyncssh connection, just opened) send through ``CoalescingWrites``.
    asyncssh keeps its socket's transport in ``_transport``; where it does not (another
    version), the connection is left as it is: correct, one send per packet."""
    transport = getattr(conn, "_transport", None)
    if isinstance(transport, asyncio.WriteTransport) and not isinstance(transport, CoalescingWrites):
        conn._transport = CoalescingWrites(transport, asyncio.get_running_loop())  # type: ignore[attr-defined]
