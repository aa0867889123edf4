"""End to end: a planned campaign through the dispatcher over SMPP to the simulator with
receipts on, until every message has a final status in the database — and, in the same
run, the ceiling: a bare SMPP client against the same simulator configuration.

    .venv/bin/python bench/bench_dispatch.py --size 200000
    .venv/bin/python bench/bench_dispatch.py --size 10000     # CI smoke
Target (issue: sending pipeline): at least 3,000 messages/s over 200,000 and at least
60% of the ceiling measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench_smpp import run_bare, simulator_config
from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.campaigns.service import create_campaign, start_campaign
from echelon.channels.simulator import SimulatorProcess
from echelon.compliance.policy import save_settings
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.db.outbox import messages
from echelon.dispatch.channel_admin import add_channel, smpp_config
from echelon.dispatch.dispatcher import Dispatcher, DispatchOptions
from echelon.workspaces.service import create_workspace, update_settings
from support import POSTGRES, scratch_postgres

PROFILE = os.environ.get("ECHELON_BENCH_PROFILE")  # a path: write cProfile stats there
FINAL = ("delivered", "undelivered", "expired", "rejected")


def write_customers(path: Path, size: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "姓名", "营销同意"])
        writer.writerows([f"13{i % 10}{i:08d}"[:11], f"客户{i}", "是"] for i in range(size))


def prepare(url: str, customers: Path) -> tuple[Any, int]:
    engine = create_db_engine(url)
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="bench", name="bench")
    now = datetime.now(UTC)
    import_contacts(
        engine,
        workspace=workspace,
        path=customers,
        options=ContactImportOptions(consent_source="bench"),
        now=now,
    )
    with engine.begin() as conn:  # send whatever the hour: the window is the whole day
        save_settings(conn, workspace.id, {"quiet_start": "00:00", "quiet_end": "00:00"})
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    create_template(
        engine, workspace_id=workspace.id, name="t", kind="marketing",
        body="{{ name }}您好，会员日全场8折", signature=None, actor="bench", now=now,
    )  # fmt: skip
    submit_template(engine, workspace_id=workspace.id, name="t", actor="bench", now=now)
    approve_template(engine, workspace_id=workspace.id, name="t", actor="bench", now=now)
    create_campaign(
        engine, workspace_id=workspace.id, name="c", template="t", audience={"kind": "all"},
        send_at=None, ends_at=None, throttle_per_second=None, budget_yuan=None, now=now,
    )  # fmt: skip
    summary = start_campaign(engine, workspace_id=workspace.id, name="c", now=now)
    return engine, int(summary["planned"])


def measure(url: str, customers: Path, window: int) -> dict[str, Any]:
    engine, planned = prepare(url, customers)
    with SimulatorProcess(simulator_config()) as sim:
        add_channel(
            engine, workspace_id=1, name="sim",
            config=smpp_config({"host": sim.host, "port": sim.port, "system_id": "bench",
                                "password": "pw", "window": window}),
            carriers=["all"], weight=1, priority=0, now=datetime.now(UTC),
        )  # fmt: skip
        dispatcher = Dispatcher(engine, options=DispatchOptions(poll_interval=0.01))
        started = time.perf_counter()
        cpu = time.process_time()
        if PROFILE:
            import cProfile

            with cProfile.Profile() as profile:
                stats = asyncio.run(dispatcher.run(until_idle=True, receipt_wait=30))
            profile.dump_stats(PROFILE)
        else:
            stats = asyncio.run(dispatcher.run(until_idle=True, receipt_wait=30))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        seen = sim.stop()
    with engine.connect() as conn:
        final = conn.execute(select(func.count()).where(messages.c.status.in_(FINAL))).scalar_one()
    engine.dispose()
    return {
        "planned": planned,
        "final": int(final),
        "all_final": final == planned,
        "submitted": stats.submitted,
        "receipts": stats.receipts,
        "simulator_accepted": seen.accepted,
        "seconds": round(elapsed, 2),
        "msg_per_s": round(planned / elapsed),
        "our_cpu_us_per_msg": round(cpu / planned * 1e6),
    }


def ceiling(count: int, window: int) -> float:
    with SimulatorProcess(simulator_config()) as sim:
        elapsed = asyncio.run(run_bare(sim, count, window))
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"command: {' '.join([sys.executable, *sys.argv])}", flush=True)
    bare = ceiling(args.size, args.window)
    print(f"ceiling    bare SMPP client, receipts on: {bare:,.0f} msg/s", flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        customers = Path(tmp) / "customers.csv"
        write_customers(customers, args.size)
        runs: list[tuple[str, Any]] = []
        if not args.skip_sqlite:
            runs.append(
                ("sqlite", lambda: measure(f"sqlite:///{tmp}/b.db", customers, args.window))
            )
        if not args.skip_postgres:

            def on_postgres() -> dict[str, Any]:
                with scratch_postgres(args.postgres) as url:
                    return measure(url, customers, args.window)

            runs.append(("postgresql", on_postgres))
        for name, run in runs:
            result = run()
            result["share_of_ceiling"] = f"{result['msg_per_s'] / bare:.0%}"
            print(f"{name:<10} {result}", flush=True)
            ok = ok and result["all_final"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
