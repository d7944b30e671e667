"""Benchmark: the database probe (``console.db.inspect``) beside the single checks it replaces.

    .venv/bin/python bench/db_probe.py [--runs N] [--delay-ms D]

Starts the simulator with a real PostgreSQL (staging, one host) and reads the database's
facts — migration 004's columns and indexes, what would go with the columns, the row count —
N times each way, alternating:

- single checks (the baseline): one connection, then one statement per fact, as the
  rollback's own steps read them (``present_columns``, ``present_indexes``,
  ``dependent_objects``, a count): the probe's way until 2026-12-02;
- inspect: one connection, one statement (the probe's way now).

Twice: straight to PostgreSQL on loopback (CPU per read, this process), and through a relay
that holds every chunk ``--delay-ms`` each way, as a database across a WAN or an SSH forward
does (wall time per read). Prints medians and the ratio inspect / single checks; ends with
one goal line per figure: inspect must cost less than the single checks (ratio < 1).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench._common import goal, load_average

if TYPE_CHECKING:
    from console.config.model import Database
    from console.transport.base import Transport

Read = Callable[..., Awaitable[object]]


async def singles(d: Database, transport: Transport) -> object:
    from console import db

    async with db.connect(d, transport) as conn:
        return (
            await db.present_columns(conn, d.table, d.columns),
            await db.present_indexes(conn, d.indexes),
            await db.dependent_objects(conn, d.table, d.columns),
            await conn.fetchval(f"SELECT count(*) FROM {db.quote_ident(d.table)}"),
        )


async def relay(host: str, port: int, delay_s: float) -> tuple[asyncio.Server, int]:
    """A TCP relay to host:port that holds each chunk ``delay_s`` in each direction."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await asyncio.sleep(delay_s)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@dataclasses.dataclass(frozen=True)
class _Dsn:
    value: str

    def resolve(self) -> str:
        return self.value

    def describe(self) -> str:
        return "the bench's relay"


async def measure(config_path: Path, runs: int, delay_s: float) -> dict[str, dict[str, list[float]]]:
    from console import db
    from console.config import load_config
    from console.probes.collect import Prober

    config = load_config(config_path)
    env = config.environment("staging")
    d = env.database
    assert d is not None
    ways: dict[str, Read] = {"single checks": singles, "inspect": db.inspect}
    out: dict[str, dict[str, list[float]]] = {"cpu": {w: [] for w in ways}, "link": {w: [] for w in ways}}
    async with Prober(config) as prober:
        transport = await prober.pool.get(env.hosts[0])
        for read in ways.values():  # warm-up: imports, first connections
            await read(d, transport)
        for i in range(runs):
            for name in list(ways)[i % 2 :] + list(ways)[: i % 2]:
                start = time.process_time()
                await ways[name](d, transport)
                out["cpu"][name].append(time.process_time() - start)
        host, port = db.dsn_endpoint(d.dsn.resolve())
        server, relayed = await relay(host, port, delay_s)
        far = dataclasses.replace(d, dsn=_Dsn(d.dsn.resolve().replace(f":{port}/", f":{relayed}/", 1)))
        try:
            for i in range(runs):
                for name in list(ways)[i % 2 :] + list(ways)[: i % 2]:
                    start = time.perf_counter()
                    report = await ways[name](far, transport)
                    out["link"][name].append(time.perf_counter() - start)
                    error = getattr(report, "error", None)  # inspect's; the single checks raise
                    if error:
                        raise SystemExit(f"{name} through the relay failed: {error}")
        finally:
            server.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="reads each way, per part (default 30)")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="the relay's delay each way (default 10)")
    args = parser.parse_args()
    from console.simulator import postgres
    from console.simulator.world import Simulation

    missing = postgres.available()
    if missing:
        raise SystemExit(f"needs PostgreSQL: {missing}")
    print(f"load average at the start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
        with Simulation(Path(tmp) / "sim", environments=("staging",), database=True) as sim:
            figures = asyncio.run(measure(sim.config_path, args.runs, args.delay_ms / 1000))
    print(f"load average at the end: {load_average()}\n")
    lines = []
    for part, unit, label in (
        ("cpu", "ms of CPU", "straight to PostgreSQL on loopback"),
        ("link", "ms", f"through a relay holding each chunk {args.delay_ms:g} ms each way"),
    ):
        base = statistics.median(figures[part]["single checks"])
        this = statistics.median(figures[part]["inspect"])
        print(f"the database's facts, {label} (median of {args.runs}, {unit}):")
        print(f"  single checks (4 statements)   {base * 1000:8.2f}")
        print(f"  inspect (1 statement)          {this * 1000:8.2f}   ratio {this / base:.2f}")
        lines.append(goal(f"db-probe-{part}", this / base, "< 1 (the single checks)", this < base, "{:.2f}x"))
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
