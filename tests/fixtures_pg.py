"""PostgreSQL and simulator fixtures: real processes, cleaned up even when a test fails.

- ``pg_cluster`` (session): a throwaway PostgreSQL cluster; skips with a reason when the
  server binaries are missing.
- ``simulation`` (session): the default simulation (staging + production, one host each,
  PostgreSQL when installed) shared by tests that only read from it. Requests append to
  its logs; anything else (flags, faults, restarts, SQL) belongs in ``make_simulation``.
- ``make_simulation`` (function): a factory of simulations a test may change at will;
  their databases live in the session cluster (no initdb per test). Stopped at test end.

Should pytest itself be killed, each simulation's guard process stops what it started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from console.simulator import postgres
from console.simulator.postgres import PgCluster
from console.simulator.world import Simulation

PG_SKIP = "needs PostgreSQL server binaries (apt-get install postgresql): "


def requires_database(sim: Simulation) -> None:
    """Skip a test that needs the simulation's database when there is none."""
    if not sim.has_database:
        pytest.skip(PG_SKIP + (postgres.available() or sim.database_note or "no database"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    reason = postgres.available()
    if reason:
        pytest.skip(PG_SKIP + reason)
    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def simulation(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulation]:
    cluster = request.getfixturevalue("pg_cluster") if postgres.available() is None else None
    sim = Simulation(tmp_path_factory.mktemp("simulation"), database=cluster is not None, cluster=cluster)
    try:
        sim.start()
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def make_simulation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Simulation]]:
    made: list[Simulation] = []

    def make(*, environments: tuple[str, ...] = ("staging",), database: bool = False, **kwargs: Any) -> Simulation:
        cluster = request.getfixturevalue("pg_cluster") if database else None
        sim = Simulation(
            tmp_path_factory.mktemp("sim"), environments=environments, database=database, cluster=cluster, **kwargs
        )
        made.append(sim)
        return sim.start()

    try:
        yield make
    finally:
        for sim in reversed(made):
            sim.stop()
