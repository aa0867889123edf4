"""Campaign planning speed: gate + render + compose + count + lint + bill + write the
outbox for N recipients, on SQLite and PostgreSQL, figures printed.

    .venv/bin/python bench/bench_planning.py --size 1000000
Target (issue: sending pipeline): 1,000,000 recipients planned in under 60 s on each.
Planning runs in two processes (``campaigns.planning``); ``client_cpu_s`` above
``seconds`` shows both cores at work.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.campaigns.service import create_campaign, start_campaign
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.runtime.sample import SampleShape, write_contacts_csv
from echelon.workspaces.service import create_workspace, update_settings
from support import POSTGRES, scratch_postgres

BODY = "{{ name | default('会员') }}您好，双11预售开启，{{ 会员等级 }}会员专享满300减50"


def measure(url: str, path: Path) -> dict[str, float]:
    engine = create_db_engine(url)
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="bench", name="bench")
    now = datetime.now(UTC)
    import_contacts(
        engine,
        workspace=workspace,
        path=path,
        options=ContactImportOptions(consent_source="bench"),
        now=now,
    )
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    create_template(
        engine,
        workspace_id=workspace.id,
        name="t",
        kind="marketing",
        body=BODY,
        signature=None,
        actor="bench",
        now=now,
    )
    submit_template(engine, workspace_id=workspace.id, name="t", actor="bench", now=now)
    approve_template(engine, workspace_id=workspace.id, name="t", actor="review", now=now)
    noon = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC) + timedelta(
        days=1, hours=4
    )
    create_campaign(
        engine,
        workspace_id=workspace.id,
        name="c",
        template="t",
        audience={"kind": "all"},
        send_at=noon,
        ends_at=None,
        throttle_per_second=None,
        budget_yuan=None,
        now=now,
    )
    cpu = _cpu_seconds()
    started = time.perf_counter()
    summary = start_campaign(engine, workspace_id=workspace.id, name="c", now=now)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    engine.dispose()
    rows = summary["audience"]
    return {
        "recipients": rows,
        "planned": summary["planned"],
        "blocked": sum(summary["blocked"].values()),
        "seconds": round(seconds, 2),
        "recipients_per_s": round(rows / seconds),
        # This process and the planning child it forks (the database server not counted).
        "client_cpu_s": round(cpu, 2),
    }


def _cpu_seconds() -> float:
    mine, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        write_contacts_csv(path, SampleShape(contacts=args.size))
        if not args.skip_sqlite:
            print(f"sqlite     {measure(f'sqlite:///{tmp}/bench.db', path)}", flush=True)
        if args.skip_postgres:
            return
        with scratch_postgres(args.postgres) as url:
            postgres = measure(url, path)
        print(f"postgresql {postgres}", flush=True)


if __name__ == "__main__":
    main()
