"""Fixtures for channel tests against a real simulator process on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from channels_support import sim_config

from echelon.channels.simulator import SimulatorConfig, SimulatorProcess


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorProcess]:
    """One simulator with the scripted rules, for tests that do not read its stats."""
    with SimulatorProcess(sim_config()) as sim:
        yield sim


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimulatorProcess]]:
    """Start simulators with a test's own config; any still running are stopped after."""
    started: list[SimulatorProcess] = []

    def start(config: SimulatorConfig | None = None, port: int | None = None) -> SimulatorProcess:
        sim = SimulatorProcess(config or sim_config(), port=port)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()
