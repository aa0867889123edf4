"""Running the simulator in this process: ``run(config)`` and the command line.

``python -m echelon.channels.simulator --port 2775 --config sim.json`` prints
``READY <host> <port>`` once the port accepts connections, serves until SIGINT or
SIGTERM, then prints ``STATS {json}`` (counts only) and, with ``--stats``, writes the
full ``SimulatorStats`` there as JSON — which is how tests and the demo read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import smpp34

from echelon.channels.simulator.models import SimulatorConfig, SimulatorStats
from echelon.channels.simulator.server import Simulator


def run(config: SimulatorConfig, *, stats_path: Path | None = None) -> SimulatorStats:
    """Serve ``config`` until SIGINT/SIGTERM; return (and optionally write) the stats.

    Not ``asyncio.run``: at its end it waits for every task still pending, and a stop
    of smpp34's that hangs (see ``Simulator.serve``) would hold the process forever."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_serve(config, stats_path))
    finally:
        loop.close()


async def _serve(config: SimulatorConfig, stats_path: Path | None) -> SimulatorStats:
    simulator = Simulator(config)
    ready = f"READY {config.host} {config.port}"
    task = asyncio.create_task(simulator.serve(on_ready=lambda: print(ready, flush=True)))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    stats = simulator.stats()
    if stats_path is not None:
        # Written whole then renamed, so a reader never sees half a file.
        partial = stats_path.with_suffix(".partial")
        partial.write_text(stats.model_dump_json(), encoding="utf-8")
        os.replace(partial, stats_path)
    summary = stats.model_dump(mode="json", exclude={"messages"})
    print("STATS " + json.dumps(summary, sort_keys=True), flush=True)
    return stats


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The command line. It ends the process (exit 0, or 1 if it cannot serve)."""
    parser = argparse.ArgumentParser(
        prog="echelon simulator", description="An SMPP 3.4 SMSC simulator (smpp34 server)."
    )
    parser.add_argument("--config", type=Path, help="SimulatorConfig as JSON")
    parser.add_argument("--host", help="address to listen on (default from config)")
    parser.add_argument("--port", type=int, help="port to listen on (default from config)")
    parser.add_argument("--seed", type=int, help="seed for every random choice")
    parser.add_argument("--stats", type=Path, help="write SimulatorStats JSON here on exit")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    config = SimulatorConfig.from_file(args.config) if args.config else SimulatorConfig()
    overrides = {key: getattr(args, key) for key in ("host", "port", "seed")}
    config = SimulatorConfig.model_validate(
        config.model_dump() | {k: v for k, v in overrides.items() if v is not None}
    )
    code = 0
    try:
        run(config, stats_path=args.stats)
    except (OSError, smpp34.SmppError) as exc:
        print(f"simulator: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        code = 1
    # Once smpp34 1.5.0 has run, interpreter teardown can crash (SIGSEGV/SIGABRT, about
    # one stop in three under load) while its threads complete futures into the closed
    # loop; pinned by test_exits_cleanly_when_stopped_under_load and
    # test_command_line_reports_a_busy_port. Stats are written, nothing is left to
    # clean up: leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
