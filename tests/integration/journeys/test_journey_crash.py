"""Crash safety: kill -9 the journey runner in the middle of moving 5,000 contacts
through two sends, start another, and check that every step's message exists exactly
once — none sent twice, none skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

from journeys_support import journey, template
from sqlalchemy import Engine, func, select

from echelon.audience.records import record_events, upsert_contacts
from echelon.compliance.policy import save_settings
from echelon.db.engine import create_db_engine
from echelon.db.journeys import journey_enrolments
from echelon.db.outbox import messages
from echelon.workspaces.service import Workspace, update_settings

SIZE = 5_000
PHONES = [f"139{i:08d}" for i in range(SIZE)]
TWO_SENDS = {
    "trigger": {"type": "event", "event": "signup"},
    "steps": [
        {"id": "one", "type": "send", "template": "你好"},
        {"id": "two", "type": "send", "template": "再会"},
    ],
}


def runner(engine: Engine, *extra: str) -> subprocess.Popen[bytes]:
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.Popen(
        [sys.executable, "-m", "echelon", "--database-url", url, "journeys", "run",
         "--batch-size", "100", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def planned(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())


def test_a_killed_runner_sends_nothing_twice_and_skips_nothing(
    engine: Engine, workspace: Workspace
) -> None:
    now = datetime.now(UTC)  # the subprocess runs on the real clock
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    with engine.begin() as conn:  # every hour allowed, any pace: only the crash matters here
        save_settings(
            conn,
            workspace.id,
            {
                "quiet_start": "00:00",
                "quiet_end": "00:00",
                "marketing_min_gap_hours": 0,
                "per_minute": 10,
            },
        )
    template(engine, workspace, "你好", "{{ name | default('亲') }}，欢迎")
    template(engine, workspace, "再会", "{{ name | default('亲') }}，再会")
    for start in range(0, SIZE, 10_000):
        chunk = PHONES[start : start + 10_000]
        upsert_contacts(
            engine,
            workspace_id=workspace.id,
            records=[{"phone": p, "consent": True} for p in chunk],
            consent_source="test",
            list_name=None,
            now=now,
        )
    journey(engine, workspace, "两步", TWO_SENDS, at=now)
    for start in range(0, SIZE, 10_000):
        record_events(
            engine,
            workspace_id=workspace.id,
            records=[
                {"phone": p, "type": "signup", "occurred_at": now.isoformat()}
                for p in PHONES[start : start + 10_000]
            ],
            now=now,
        )

    # Watched without taking SQLite's write lock (the test engine's transactions are
    # BEGIN IMMEDIATE): a watcher queued behind the runner saw it only near the end.
    watcher = create_db_engine(engine.url.render_as_string(hide_password=False), read_only=True)
    first = runner(engine)
    deadline = time.monotonic() + 120
    while planned(watcher) < SIZE // 5:
        assert first.poll() is None, "the runner stopped on its own"
        assert time.monotonic() < deadline, "the runner made no progress"
        time.sleep(0.005)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    watcher.dispose()
    at_kill = planned(engine)
    second = runner(engine, "--until-idle")
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0
    resumed = json.loads(output)

    print(f"\nplanned at kill: {at_kill}; the second runner: {resumed}")
    assert 0 < at_kill < 2 * SIZE
    m, e = messages.c, journey_enrolments.c
    with engine.connect() as conn:
        per_step = conn.execute(
            select(m.contact_id, m.journey_step, func.count()).group_by(
                m.contact_id, m.journey_step
            )
        ).all()
        states = conn.execute(
            select(e.status, e.exit_reason, func.count()).group_by(e.status, e.exit_reason)
        ).all()
        queued = conn.execute(select(func.count()).where(m.status == "queued")).scalar_one()
    # Every contact got each step's message exactly once …
    assert len(per_step) == 2 * SIZE
    assert {n for _, _, n in per_step} == {1}
    # … every one of them went through the gate and is waiting for the dispatcher …
    assert queued == 2 * SIZE
    # … and every contact went through the whole journey, once.
    assert [tuple(row) for row in states] == [("completed", "end", SIZE)]
    assert resumed["messages"]["queued"] == 2 * SIZE - at_kill
