"""Transports: how the console reaches a host. ``connect`` picks local or SSH."""

from __future__ import annotations

from console.config.model import Host
from console.transport.base import (
    CommandResult,
    HostKeyError,
    Transport,
    TransportError,
)
from console.transport.local import LocalTransport


async def connect(host: Host) -> Transport:
    """A ready transport to ``host``; raises TransportError saying what went wrong."""
    if host.is_local:
        return LocalTransport(host)
    from console.transport.ssh import SSHTransport

    return await SSHTransport.connect(host)


__all__ = [
    "CommandResult",
    "HostKeyError",
    "LocalTransport",
    "Transport",
    "TransportError",
    "connect",
]
