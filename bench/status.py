"""Benchmark: one full `status` of both simulated environments, concurrent vs one request at a time.

    .venv/bin/python bench/status.py [--rounds N] [--no-database]

Starts one simulation (staging + production; PostgreSQL when installed), warms up, then
times N rounds of each, interleaved so that drift on a busy machine hits both alike:

- concurrent: what `rollback-console status` does — Prober.snapshot of both environments
  at once (every host's probes concurrent, the database probe beside them);
- sequential: the same requests with the same probe functions, each awaited in turn
  (environment by environment, host by host, probe by probe).

Prints medians, p90s and the ratio concurrent / sequential (lower is better; < 1 means the
concurrency pays). Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

from console.config import Config, load_config
from console.config.model import Environment
from console.probes import http, logs
from console.probes.collect import Prober, reachable_base
from console.probes.hostread import LOG_LINES_FOR_FLAGS, read_log_window, read_pid
from console.profile import profile_of
from console.simulator.world import Simulation


async def concurrent_round(prober: Prober, envs: list[Environment]) -> None:
    """`status`: every environment at once, as snapshot_all does."""
    await asyncio.gather(*(prober.snapshot(env) for env in envs))


async def sequential_round(prober: Prober, envs: list[Environment]) -> None:
    """The same probes, awaited one after another; the same parsing of what they return."""
    config = prober.config
    timeout = config.thresholds.probe_timeout_s
    for env in envs:
        for host in env.hosts:
            transport = await prober.pool.get(host)
            env_file = await transport.read_file(env.expand(env.env_file, host))
            pid = await read_pid(env, host, transport, timeout)
            environ = await transport.process_environ(pid)
            rss = await transport.process_rss(pid)
            base = await reachable_base(env, host, transport)
            await http.probe_health(prober.client, base, profile_of(env).health)
            await prober.probe_once(env, host, transport)
            window = config.thresholds.error_lines_window
            read = await read_log_window(env, host, transport, max(LOG_LINES_FOR_FLAGS, window), window, timeout)
            prober._flags(env, host, env_file, (pid, environ, rss), read)
            logs.summarize(read.lines)
        if env.database:
            await prober.probe_database(env)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(config: Config, rounds: int, warmup: int) -> dict[str, list[float]]:
    envs = [config.environment(name) for name in config.environments]
    times: dict[str, list[float]] = {"concurrent": [], "sequential": []}
    kinds: dict[str, Callable[[Prober, list[Environment]], Awaitable[None]]] = {
        "concurrent": concurrent_round,
        "sequential": sequential_round,
    }
    async with Prober(config) as prober:  # one pool and one HTTP client, as the console holds them
        for i in range(warmup + rounds):
            order = list(kinds) if i % 2 == 0 else list(reversed(kinds))  # interleaved
            for kind in order:
                start = time.perf_counter()
                await kinds[kind](prober, envs)
                if i >= warmup:
                    times[kind].append(time.perf_counter() - start)
    return times


def report(times: dict[str, list[float]], sim: Simulation) -> None:
    con, seq = times["concurrent"], times["sequential"]
    ratios = [c / s for c, s in zip(con, seq, strict=True)]
    db = "with PostgreSQL" if sim.has_database else f"without database ({sim.database_note})"
    print(f"status of {', '.join(sim.environments)} (1 host each, {db}), {len(con)} rounds after warm-up")
    print(f"{'':<12}{'median':>10}{'p90':>10}{'min':>10}{'max':>10}")
    for kind, values in times.items():
        cells = [statistics.median(values), percentile(values, 0.9), min(values), max(values)]
        print(f"{kind:<12}" + "".join(f"{v * 1000:>8.1f}ms" for v in cells))
    print(
        f"ratio concurrent/sequential: {statistics.median(con) / statistics.median(seq):.2f} (of medians), "
        f"{statistics.median(ratios):.2f} (median per round), p90 {percentile(ratios, 0.9):.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds of each kind (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--no-database", action="store_true", help="simulate without PostgreSQL")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-status-") as directory:
        print("starting the simulation…", file=sys.stderr)
        sim = Simulation(directory, database=False if args.no_database else None)
        with sim:
            config = load_config(sim.config_path)
            times = asyncio.run(measure(config, args.rounds, args.warmup))
            report(times, sim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
