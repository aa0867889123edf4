"""Journey runner speed: N contacts enter a 4-step journey at once (send → wait a day →
branch → send); how long until every due step is planned into the outbox, through the
gate, on SQLite and PostgreSQL. The clock is passed in, so "a day later" is immediate.

    .venv/bin/python bench/bench_journeys.py --size 100000
Target (issue: journeys): every due step planned within 60 s of becoming due, at 100,000.
The first figure includes reading the 100,000 events and entering them; the second is
the fourth step (after the wait and the branch), due a day later.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from echelon.audience.importing import ContactImportOptions, import_contacts, import_events
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.db.outbox import messages
from echelon.journeys.batch import PassSummary
from echelon.journeys.runner import JourneyRunner, RunnerOptions
from echelon.journeys.service import activate_journey, create_journey
from echelon.workspaces.service import create_workspace, update_settings
from support import POSTGRES, scratch_postgres

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: inside the sending window
JOURNEY = {
    "trigger": {"type": "event", "event": "signup"},
    "steps": [
        {"id": "welcome", "type": "send", "template": "欢迎"},
        {"id": "next_day", "type": "wait", "days": 1},
        {"id": "bought", "type": "branch", "if": {"kind": "converted"}, "then": "thanks"},
        {"id": "thanks", "type": "send", "template": "回访"},
    ],
}
TEMPLATES = {
    "欢迎": "{{ name | default('亲') }}，欢迎加入星河会员，新人礼已到账",
    "回访": "{{ name | default('亲') }}，入会第二天，看看为您挑选的好物",
}


def write_files(directory: Path, size: int) -> tuple[Path, Path]:
    contacts, events = directory / "contacts.csv", directory / "events.csv"
    phones = [f"139{i:08d}" for i in range(size)]
    with contacts.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "姓名", "营销同意"])
        writer.writerows([phone, f"会员{i}", "是"] for i, phone in enumerate(phones))
    with events.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "事件类型", "时间"])
        writer.writerows([phone, "注册", "2026-03-02 10:00"] for phone in phones)
    return contacts, events


def until_idle(runner: JourneyRunner, now: datetime) -> tuple[float, float, PassSummary]:
    """Passes at ``now`` until one finds nothing to do: (wall s, this process's CPU s)."""
    started, cpu = time.perf_counter(), time.process_time()
    total = PassSummary()
    while True:
        done = runner.advance(now)
        total.add(done)
        if not done.work:
            return time.perf_counter() - started, time.process_time() - cpu, total


def measure(url: str, contacts: Path, events: Path, batch: int) -> dict[str, Any]:
    engine = create_db_engine(url)
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="bench", name="bench")
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    before = T0 - timedelta(days=30)
    import_contacts(
        engine,
        workspace=workspace,
        path=contacts,
        options=ContactImportOptions(consent_source="bench"),
        now=before,
    )
    for name, body in TEMPLATES.items():
        create_template(
            engine,
            workspace_id=workspace.id,
            name=name,
            kind="marketing",
            body=body,
            actor="bench",
            now=before,
        )
        submit_template(engine, workspace_id=workspace.id, name=name, actor="bench", now=before)
        approve_template(engine, workspace_id=workspace.id, name=name, actor="审核", now=before)
    create_journey(engine, workspace_id=workspace.id, name="j", definition=JOURNEY, now=before)
    activate_journey(engine, workspace_id=workspace.id, name="j", now=before)
    import_events(engine, workspace=workspace, path=events, columns={}, rejects_path=None, now=T0)
    runner = JourneyRunner(engine, RunnerOptions(batch_size=batch))
    first_s, first_cpu, first = until_idle(runner, T0)
    second_s, second_cpu, second = until_idle(runner, T0 + timedelta(days=1))
    with engine.connect() as conn:
        queued = conn.execute(
            select(func.count()).where(messages.c.status == "queued")
        ).scalar_one()
    engine.dispose()
    return {
        "contacts": first.entered,
        "entered_and_first_step_s": round(first_s, 2),
        "first_step_per_s": round(first.messages.total() / first_s),
        "second_step_s": round(second_s, 2),
        "second_step_per_s": round(second.messages.total() / second_s),
        # The runner's own CPU (all of it on SQLite; PostgreSQL's server is apart).
        "runner_cpu_s": [round(first_cpu, 2), round(second_cpu, 2)],
        "messages_queued": queued,
        "not_queued": {
            status: n
            for status, n in (first.messages + second.messages).items()
            if status != "queued"
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        contacts, events = write_files(Path(tmp), args.size)
        if not args.skip_sqlite:
            figures = measure(f"sqlite:///{tmp}/bench.db", contacts, events, args.batch)
            print(f"sqlite     {figures}", flush=True)
        if args.skip_postgres:
            return
        with scratch_postgres(args.postgres) as url:
            figures = measure(url, contacts, events, args.batch)
        print(f"postgresql {figures}", flush=True)


if __name__ == "__main__":
    main()
