"""CoalescingWrites: an SSH connection's writes made in one turn of the event loop leave in
one piece, in order, by the next turn; an abort drops what is held; a close sends it first.
The transport underneath is a recording stand-in for asyncio's socket transport; the SSH
connections that use it for real are tested in test_transport.py."""

from __future__ import annotations

import asyncio

from console.transport.coalesce import CoalescingWrites, coalesce


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.events: list[str] = []
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))
        self.events.append("write")

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True
        self.events.append("close")

    def abort(self) -> None:
        self._closing = True
        self.events.append("abort")

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 22)}.get(name, default)


async def test_writes_in_one_turn_leave_as_one_in_order_by_the_next_turn() -> None:
    raw = Recording()
    t = CoalescingWrites(raw, asyncio.get_running_loop())
    t.write(b"first ")
    t.write(bytearray(b"second "))
    t.write(memoryview(b"third"))
    assert raw.sent == []  # held until the turn ends
    await asyncio.sleep(0)
    assert raw.sent == [b"first second third"]
    t.write(b"later")
    await asyncio.sleep(0)
    t.write(b"and later still")
    await asyncio.sleep(0)
    assert raw.sent == [b"first second third", b"later", b"and later still"]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    raw = Recording()
    t = CoalescingWrites(raw, asyncio.get_running_loop())
    t.write(b"goodbye")
    t.close()
    assert raw.sent == [b"goodbye"] and raw.events == ["write", "close"]
    await asyncio.sleep(0)  # the flush that was due finds nothing more
    assert raw.sent == [b"goodbye"]

    raw = Recording()
    t = CoalescingWrites(raw, asyncio.get_running_loop())
    t.write(b"never sent")
    t.abort()
    await asyncio.sleep(0)
    assert raw.sent == [] and raw.events == ["abort"]


async def test_everything_else_is_the_transports_own() -> None:
    raw = Recording()
    t = CoalescingWrites(raw, asyncio.get_running_loop())
    assert t.get_extra_info("peername") == ("127.0.0.1", 22)
    assert t.is_closing() is False
    raw.close()
    assert t.is_closing() is True


async def test_coalesce_wraps_a_connections_transport_once_and_leaves_anything_else() -> None:
    class Conn:
        def __init__(self, transport: object) -> None:
            self._transport = transport

    conn = Conn(Recording())
    coalesce(conn)
    assert isinstance(conn._transport, CoalescingWrites)
    wrapped = conn._transport
    coalesce(conn)
    assert conn._transport is wrapped  # not wrapped twice

    other = Conn(None)  # a version of asyncssh that keeps no such attribute: left alone
    coalesce(other)
    assert other._transport is None
