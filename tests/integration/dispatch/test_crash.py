"""Crash safety: kill -9 the worker in the middle of a 50,000-message campaign, start
another, and check that no message was submitted twice and none was lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from dispatch_support import channel_for, shop_with_campaign, sim_config, statuses
from sqlalchemy import Engine, func, select

from echelon.channels.simulator import SimulatorProcess
from echelon.compliance.policy import save_settings
from echelon.db.outbox import messages
from echelon.workspaces.service import Workspace

SIZE = 50_000
FINAL = {"delivered", "undelivered", "expired", "rejected"}


def worker(engine: Engine, *extra: str) -> subprocess.Popen[bytes]:
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.Popen(
        [sys.executable, "-m", "echelon", "--database-url", url, "worker",
         "--lease-ttl", "2", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def submitted(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(messages.c.status.not_in(("queued", "submitting")))
            ).scalar_one()
        )


def test_a_killed_worker_loses_nothing_and_sends_nothing_twice(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    numbers = [f"139{i:08d}" for i in range(SIZE)]
    shop_with_campaign(engine, workspace, tmp_path, numbers)
    with engine.begin() as conn:  # the whole day is inside the window: real clock below
        save_settings(conn, workspace.id, {"quiet_start": "00:00", "quiet_end": "00:00"})
    with SimulatorProcess(sim_config(record_messages=True)) as sim:
        channel_for(engine, workspace, sim)
        first = worker(engine)
        deadline = time.monotonic() + 120
        while submitted(engine) < SIZE // 4:
            assert first.poll() is None, "the worker stopped on its own"
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = statuses(engine)
        second = worker(engine, "--until-idle", "--receipt-wait", "10")
        output, _ = second.communicate(timeout=300)
        assert second.returncode == 0
        stats = json.loads(output)
        seen = sim.stop()

    assert at_kill.get("submitting", 0) + at_kill.get("submitted", 0) > 0
    after = statuses(engine)
    print(f"\nat kill: {at_kill}\nafter restart: {after}\nsecond worker: {stats}")
    assert sum(after.values()) == SIZE
    assert set(after) <= FINAL | {"unknown"}, after  # nothing queued, nothing in flight
    # Nothing was submitted twice: every destination reached the SMSC at most once ...
    per_destination = Counter(m.destination for m in seen.messages)
    assert per_destination.most_common(1)[0][1] == 1
    # ... and everything that reached it is accounted for in the outbox.
    assert len(per_destination) >= after.get("delivered", 0) + after.get("undelivered", 0)
    assert seen.accepted == len(per_destination)
    # What the dead worker left in flight was settled as unknown, then reconciled by the
    # receipts that still came in; whatever stays unknown never reached a final receipt.
    # Those whose receipts it had stored already (acknowledged, so the SMSC will not
    # send them again) were ended by those receipts instead.
    left = at_kill.get("submitting", 0)
    assert (
        stats["settled_unknown"] <= left <= stats["settled_unknown"] + stats["settled_by_receipt"]
    )
    with engine.connect() as conn:
        never_sent = conn.execute(
            select(func.count()).where(
                messages.c.status == "unknown", messages.c.provider_id.is_not(None)
            )
        ).scalar_one()
    assert never_sent == 0
