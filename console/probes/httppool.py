"""The probes' HTTP transport: one small connection pool per API, all of them bounded together.

httpx's single pool scans every connection it holds for every request it places (httpcore's
``_assign_requests_to_connections``): with a connection kept alive to each of fifty APIs,
that bookkeeping was a third of the console's CPU over a fleet rollback (measured with
cProfile on bench/fleet.py's 50 hosts), on the cores the restarting services need. One
pool per API (its origin, and the base URL a request names in its ``rollback_console.api``
extension: APIs at paths of one server) holds only that API's connections (a few: its
probes at once); a semaphore keeps the old bound on requests in flight across all of them.
Fifty-odd APIs behind one origin in one pool made a status round time out on a slow machine.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import sys
from collections.abc import AsyncIterator, Callable

import httpx


def _sniffio_absent_once() -> None:
    """httpcore runs ``import sniffio`` each time it sets up a lock, an event or a connection,
    to learn it runs under asyncio; where sniffio is not installed each of those imports
    searches sys.path and fails (≈ 0.03 ms each; ≈ 2,300 of them over a 50-host rollback).
    Recorded once as absent, the import fails at once, and httpcore concludes "asyncio" as
    before."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # the import system's "not there"


_sniffio_absent_once()

API = "rollback_console.api"  # a request's extension naming the API (its base URL) it is for


class _Releasing(httpx.AsyncByteStream):
    """A response body that gives its place back once it is read and closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._release()


class OriginPools(httpx.AsyncBaseTransport):
    """Requests to each API go through that API's own pool; at most ``in_flight`` requests
    are open at once (from sending to the body being closed), whichever APIs. Hosts may
    share one (one URL before several of them, a load balancer): its pool may then use every
    place. ``keepalive``: idle connections each pool keeps (each may hold an SSH forward's
    socket)."""

    def __init__(self, *, in_flight: int, keepalive: int, verify: bool) -> None:
        self._in_flight = in_flight
        self._keepalive = max(1, min(in_flight, keepalive))
        self._verify = verify
        self._context: ssl.SSLContext | None = None  # one for every pool: the CA store is loaded once
        self._pools: dict[tuple[bytes, bytes, int | None, str | None], httpx.AsyncHTTPTransport] = {}
        self._gate: asyncio.Semaphore | None = None

    def _pool(self, request: httpx.Request) -> httpx.AsyncHTTPTransport:
        url = request.url
        # Per API where the request names one: APIs behind one origin (paths of one server)
        # would otherwise share a pool of every connection, the scan above again.
        key = (url.raw_scheme, url.raw_host, url.port, request.extensions.get(API))
        pool = self._pools.get(key)
        if pool is None:
            if self._context is None:
                self._context = httpx.create_ssl_context(verify=self._verify, trust_env=False)
            limits = httpx.Limits(max_connections=self._in_flight, max_keepalive_connections=self._keepalive)
            pool = self._pools[key] = httpx.AsyncHTTPTransport(verify=self._context, limits=limits)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self._in_flight)
        gate = self._gate
        await gate.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                gate.release()

        try:
            response = await self._pool(request).handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Releasing(response.stream, release)
        return response

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(p.aclose() for p in pools), return_exceptions=True)
