"""One live transport per host, shared by every probe and step that needs it."""

from __future__ import annotations

import asyncio
import contextlib

from console.config.model import Host
from console.transport.base import Transport
from console.transport.local import LocalTransport


class TransportPool:
    """Hands out one transport per host name; reconnects when an SSH connection dropped.

    Concurrent callers for the same host wait on one lock, so a dashboard refresh that
    probes a host from five places opens one connection, not five.
    """

    def __init__(self) -> None:
        self._transports: dict[str, Transport] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, host: Host) -> Transport:
        """A ready transport to ``host``; raises TransportError when it cannot connect."""
        lock = self._locks.setdefault(host.name, asyncio.Lock())
        async with lock:
            current = self._transports.get(host.name)
            if current is not None and current.host == host and not _dropped(current):
                return current
            if current is not None:
                # Dropped, or the host's settings changed (config reloaded): start afresh.
                del self._transports[host.name]
                with contextlib.suppress(Exception):
                    await current.close()
            transport = await _connect(host)
            self._transports[host.name] = transport
            return transport

    def cached(self, name: str) -> Transport | None:
        """The transport held for a host name, if any (no connecting)."""
        return self._transports.get(name)

    async def close_all(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        await asyncio.gather(*(t.close() for t in transports), return_exceptions=True)


def _dropped(transport: Transport) -> bool:
    if transport.host.is_local:
        return False  # never drops; and importing the SSH module (asyncssh) costs ~0.2 s of start-up
    from console.transport.ssh import SSHTransport

    return isinstance(transport, SSHTransport) and transport.closed


async def _connect(host: Host) -> Transport:
    if host.is_local:
        return LocalTransport(host)
    from console.transport.ssh import SSHTransport  # asyncssh is only imported when needed

    return await SSHTransport.connect(host)
