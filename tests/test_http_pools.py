"""The probes' HTTP transport: a pool per API, one bound on requests in flight across all."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from console.config import load_config
from console.probes.collect import api_origins, http_limits
from console.probes.httppool import OriginPools


class Counting:
    """Local HTTP servers that count the requests open at once, across all of them. Each
    request is held until the test lets it go, so "at once" does not depend on timing."""

    def __init__(self, servers: int) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.most = 0
        self.served: dict[int, int] = {}
        self.release = threading.Event()
        self.two_open = threading.Event()
        self.servers = [self._server() for _ in range(servers)]

    def _server(self) -> ThreadingHTTPServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer.lock:
                    outer.open += 1
                    outer.most = max(outer.most, outer.open)
                    if outer.open >= 2:
                        outer.two_open.set()
                    port = self.server.server_address[1]
                    outer.served[port] = outer.served.get(port, 0) + 1
                outer.release.wait(10)
                # No longer open once it is answered: counted down after the write, the client
                # could read the answer and send its next request before this thread got here.
                with outer.lock:
                    outer.open -= 1
                body = b'{"status": "healthy"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    @property
    def ports(self) -> list[int]:
        return [s.server_address[1] for s in self.servers]

    def close(self) -> None:
        self.release.set()
        for s in self.servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def counting() -> Iterator[Counting]:
    c = Counting(3)
    yield c
    c.close()


async def test_requests_in_flight_are_bounded_across_apis(counting: Counting) -> None:
    transport = OriginPools(in_flight=2, keepalive=4, verify=False)
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        urls = [f"http://127.0.0.1:{port}/health" for port in counting.ports for _ in range(3)]
        tasks = [asyncio.ensure_future(client.get(u)) for u in urls]
        # Wait until the bound is reached: two held at the servers, the other seven queued.
        assert await asyncio.to_thread(counting.two_open.wait, 10)
        await asyncio.sleep(0.2)  # room for a third to arrive, were it let through (it must not be)
        assert counting.open == 2
        counting.release.set()
        replies = await asyncio.gather(*tasks)
    assert [r.status_code for r in replies] == [200] * 9
    assert counting.most == 2
    assert sorted(counting.served.values()) == [3, 3, 3]


async def test_a_read_answer_gives_its_place_back(counting: Counting) -> None:
    """One place in all: each request goes once the answer before it was read and closed."""
    counting.release.set()
    transport = OriginPools(in_flight=1, keepalive=1, verify=False)
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        for port in counting.ports * 2:
            async with client.stream("GET", f"http://127.0.0.1:{port}/health") as response:
                assert (await response.aread()) == b'{"status": "healthy"}'
        replies = await asyncio.gather(*(client.get(f"http://127.0.0.1:{p}/health") for p in counting.ports))
    assert [r.json() for r in replies] == [{"status": "healthy"}] * 3
    assert counting.most == 1


async def test_a_failed_request_gives_its_place_back() -> None:
    """Nothing listens: the error comes back, and the one place is free for the next request."""
    transport = OriginPools(in_flight=1, keepalive=1, verify=False)
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        for _ in range(3):  # a place kept by a failure would hold the next one forever: bounded here
            with pytest.raises(httpx.ConnectError):
                await asyncio.wait_for(client.get(f"http://127.0.0.1:{port}/health"), 10)


def _config_of_many_hosts(tmp_path: Path, behind_one_url: int, own_ports: int) -> Path:
    """Hosts on this machine: ``behind_one_url`` of them answer at one URL (a load balancer),
    ``own_ports`` at a port each."""
    lines, names = [], []
    for i in range(behind_one_url + own_ports):
        name = f"api-{i}"
        names.append(name)
        port = 8000 if i < behind_one_url else 9000 + i
        lines += [f"[hosts.{name}]", 'address = "local"', f"vars = {{ port = {port} }}", ""]
    password = tmp_path / "password"
    password.write_text("x\n")
    lines += [
        "[environments.staging]",
        'kind = "staging"',
        f"hosts = {names!r}".replace("'", '"'),
        'api_url = "http://127.0.0.1:{port}"',
        "channel_id = 1",
        'login_email = "ops@example.org"',
        f'password = {{ file = "{password}" }}',
        'env_file = "/srv/app/.env"',
        'restart_command = "true"',
        'pid_command = "echo 1"',
        'log_file = "/srv/app/app.log"',
    ]
    path = tmp_path / "console.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_idle_connections_are_shared_by_origin_not_by_host(tmp_path: Path) -> None:
    """Forty hosts behind one URL are one pool: it keeps as many idle connections as a host with
    a URL of its own does, not a fortieth of the room (it reopened connections all the time)."""
    config = load_config(_config_of_many_hosts(tmp_path, behind_one_url=40, own_ports=2))
    assert api_origins(config) == 3
    in_flight, per_origin = http_limits(42, api_origins(config))
    _, per_host = http_limits(42)
    assert per_origin >= per_host * 14 and per_origin > per_host  # the room split three ways, not 42
    # What OriginPools then keeps for the shared origin: up to the bound on requests in flight.
    assert min(in_flight, per_origin) >= min(in_flight, 40)


async def test_apis_at_paths_of_one_server_each_have_their_own_pool(counting: Counting) -> None:
    """Fifty-odd APIs at paths of one server in one pool: httpcore scanned every connection
    for every request, and on a slow machine a `status` round timed out on answers that had
    come (the hostile-answers sweep). Requests naming their API go to that API's pool; hosts
    behind one URL (the same API) still share one."""
    from console.probes.httppool import API

    counting.release.set()
    transport = OriginPools(in_flight=10, keepalive=4, verify=False)
    port = counting.ports[0]
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        for case in ("a", "b", "c", "a"):
            base = f"http://127.0.0.1:{port}/{case}"
            reply = await client.get(f"{base}/health", extensions={API: base})
            assert reply.status_code == 200
        await client.get(f"http://127.0.0.1:{port}/health")  # naming no API: the origin's pool
        assert len(transport._pools) == 4
