"""A small HTTP/1.1 server on asyncio streams: enough for JSON APIs with keep-alive."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
IDLE_TIMEOUT_S = 30.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    client: str
    version: str = "HTTP/1.1"

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"content-type": "application/json", **(headers or {})})


Handler = Callable[[Request], Awaitable[Response]]
AccessLog = Callable[[Request, int], None]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_request(reader: asyncio.StreamReader, client: str) -> Request | None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest(400, "incomplete request") from None
        return None  # the client closed a kept-alive connection
    except asyncio.LimitOverrunError:
        raise _BadRequest(431, "request head too large") from None
    except TimeoutError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest(400, "malformed request line") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, "malformed header")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest(411, "chunked request bodies are not supported")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400, "bad Content-Length") from None
    if length < 0 or length > MAX_BODY:
        raise _BadRequest(413, "request body too large")
    body = await reader.readexactly(length) if length else b""
    url = urlsplit(target)
    return Request(
        method=method.upper(),
        path=unquote(url.path),
        query=dict(parse_qsl(url.query)),
        headers=headers,
        body=body,
        client=client,
        version=version,
    )


def _encode(response: Response, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    headers = {**response.headers, "content-length": str(len(response.body)), "server": "uvicorn"}
    headers["connection"] = "keep-alive" if keep_alive else "close"
    head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + response.body


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler, access: AccessLog | None
) -> None:
    peer = writer.get_extra_info("peername") or ("?", 0)
    client = f"{peer[0]}:{peer[1]}"
    try:
        while True:
            try:
                request = await _read_request(reader, client)
            except (_BadRequest, asyncio.IncompleteReadError) as exc:
                status = exc.status if isinstance(exc, _BadRequest) else 400
                writer.write(_encode(Response.json(status, {"detail": str(exc) or "bad request"}), False))
                await writer.drain()
                return
            if request is None:
                return
            response = await handler(request)
            if access:
                access(request, response.status)
            keep_alive = request.headers.get("connection", "").lower() != "close" and request.version == "HTTP/1.1"
            writer.write(_encode(response, keep_alive))
            await writer.drain()
            if not keep_alive:
                return
    except ConnectionError:
        pass  # the client went away
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def start_server(handler: Handler, host: str, port: int, access: AccessLog | None = None) -> asyncio.Server:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve(reader, writer, handler, access)
        except asyncio.CancelledError:
            # Shutting down with a kept-alive connection open (the console's pool): Python
            # 3.11.7 reports a cancelled handler as "Exception in callback …" with a traceback
            # in the service's log, which a real API's clean shutdown does not write.
            with contextlib.suppress(Exception):
                writer.close()

    return await asyncio.start_server(on_connect, host, port, limit=MAX_HEAD, reuse_address=True)


async def serve_until_signalled(
    server: asyncio.Server, tick: Callable[[asyncio.Event], Awaitable[None]], say: Callable[[str], None]
) -> None:
    """Serve until SIGTERM or SIGINT, with ``tick`` running meanwhile; then close the server
    (the simulated services' shared lifecycle)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ticker = asyncio.create_task(tick(stop))
    await stop.wait()
    say("Shutting down")
    server.close()
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
