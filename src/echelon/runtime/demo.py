"""``echelon demo``: the main job end to end on an embedded SQLite database.

A generated shop's customer file (with planted bad numbers and customers who declined
marketing) is imported with its consent, a list of opt-outs is applied, a marketing
template is written, reviewed and approved, and a campaign to every member is
planned into the outbox through the gate — blocked recipients counted by reason, parts
and cost estimated — and sent by the dispatcher over SMPP to the simulator, which
answers with receipts (some 空号), and a few replies: opt-outs and a question that
gets the workspace's auto-reply.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from echelon.audience.contacts import count_contacts
from echelon.audience.importing import ContactImportOptions, import_contacts, import_suppressions
from echelon.campaigns.service import create_campaign, preview_campaign, start_campaign
from echelon.channels.simulator import LogNormalDelay, SimulatorConfig, SimulatorProcess
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.dispatch.channel_admin import add_channel, smpp_config
from echelon.dispatch.dispatcher import Dispatcher, DispatchOptions
from echelon.dispatch.report import campaign_outcome
from echelon.dispatch.settings import save_dispatch_settings
from echelon.runtime.sample import SampleShape, sample_phones, write_contacts_csv, write_phone_list
from echelon.workspaces.service import create_workspace, update_settings

OPENING_HOURS = "门店周末营业时间 10:00-22:00，欢迎光临"

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    directory: Path
    contacts: int = 10_000
    opt_outs: int = 200


def run_demo(options: DemoOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run the demo in a fresh ``directory`` and return its summary."""
    started = time.perf_counter()
    if options.directory.exists():
        shutil.rmtree(options.directory)
    options.directory.mkdir(parents=True)
    engine = create_db_engine(f"sqlite:///{options.directory / 'echelon.db'}")
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="demo", name="示例商城")
    now = datetime.now(UTC)

    customers = options.directory / "customers.csv"
    write_contacts_csv(customers, SampleShape(contacts=options.contacts))
    imported = import_contacts(
        engine,
        workspace=workspace,
        path=customers,
        options=ContactImportOptions(consent_source="checkout_checkbox", list_name="会员"),
        now=now,
        progress=progress,
    )
    opt_out_file = options.directory / "opt_outs.csv"
    write_phone_list(opt_out_file, sample_phones(customers, options.opt_outs, seed=11), "回复TD")
    opted_out = import_suppressions(
        engine,
        workspace=workspace,
        path=opt_out_file,
        kind="opt_out",
        source="demo",
        columns={},
        rejects_path=None,
        now=now,
    )
    counts = count_contacts(engine, workspace_id=workspace.id)
    planned = _plan_campaign(engine, workspace.id, now)
    sent = _send(engine, workspace.id, planned["send_at"])
    engine.dispose()
    return {
        "database": str(options.directory / "echelon.db"),
        "rows": imported.rows,
        "imported": imported.imported,
        "rejected": imported.rejected,
        "rejected_by_reason": _reasons(imported.rejects_file),
        "marketing_consent": counts["marketing_consent"],
        "opt_outs_imported": opted_out.imported,
        "marketing_reachable": counts["marketing_reachable"],
        "by_carrier": counts["by_carrier"],
        "planned": planned["planned"],
        "blocked": planned["blocked"],
        "parts": planned["parts"],
        "estimated_cost_yuan": planned["cost_yuan"],
        "sample": planned["samples"][0]["text"] if planned["samples"] else None,
        **sent,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _plan_campaign(engine: Engine, workspace_id: int, now: datetime) -> dict[str, Any]:
    """Write, review and approve a template, then preview and start a campaign to the
    members list — at noon Shanghai time, so quiet hours do not move it."""
    update_settings(engine, workspace_id=workspace_id, signature="星河商城")
    body = "{{ name | default('会员') }}您好，双11预售开启，{{ 会员等级 }}会员专享满300减50"
    create_template(
        engine,
        workspace_id=workspace_id,
        name="双11预售",
        kind="marketing",
        body=body,
        signature=None,
        actor="运营",
        now=now,
    )
    submit_template(engine, workspace_id=workspace_id, name="双11预售", actor="运营", now=now)
    approve_template(engine, workspace_id=workspace_id, name="双11预售", actor="审核", now=now)
    send_at = datetime.combine(now.date(), time_of_day(4, 0), tzinfo=UTC) + timedelta(days=1)
    create_campaign(
        engine,
        workspace_id=workspace_id,
        name="双11预热",
        template="双11预售",
        audience={"kind": "list", "list": "会员"},
        send_at=send_at,
        ends_at=None,
        throttle_per_second=None,
        budget_yuan=None,
        now=now,
    )
    preview = preview_campaign(
        engine, workspace_id=workspace_id, name="双11预热", samples=1, now=now
    )
    started = start_campaign(engine, workspace_id=workspace_id, name="双11预热", now=now)
    started["samples"] = preview["samples"]
    started["send_at"] = send_at
    return started


def _send(engine: Engine, workspace_id: int, send_at: datetime) -> dict[str, Any]:
    """Send the campaign over SMPP to the simulator with a dispatcher, on a clock that
    starts at the campaign's send time (noon in Shanghai, inside the marketing window,
    whatever the hour the demo runs), and report what became of every message."""
    with engine.begin() as conn:
        save_dispatch_settings(
            conn, workspace_id, {"auto_replies": [{"keyword": "营业时间", "reply": OPENING_HOURS}]}
        )
    simulator = SimulatorConfig(
        seed=2026,
        delivery_success_ratio=0.97,
        receipt_delay=LogNormalDelay(median_ms=300, p95_ms=1500),
        reply_delay=LogNormalDelay(median_ms=200, p95_ms=800),
        empty_suffixes=("404",),  # 空号
        reply_suffixes={"777": "TD", "520": "退订", "1314": "请问周末营业时间？"},
    )
    with SimulatorProcess(simulator) as sim:
        add_channel(
            engine,
            workspace_id=workspace_id,
            name="模拟网关",
            config=smpp_config(
                {
                    "host": sim.host,
                    "port": sim.port,
                    "system_id": "demo",
                    "password": "demo",
                    "source_addr": "1069",
                }
            ),
            carriers=["all"],
            weight=1,
            priority=0,
            now=send_at,
        )
        origin = time.monotonic()
        dispatcher = Dispatcher(
            engine,
            options=DispatchOptions(poll_interval=0.02, refresh_interval=1.0),
            clock=lambda: send_at + timedelta(seconds=time.monotonic() - origin),
        )
        stats = asyncio.run(dispatcher.run(until_idle=True, receipt_wait=10))
    with engine.connect() as conn:
        outcome = campaign_outcome(conn, workspace_id)
    outcome["replies"] = stats.replies
    outcome["opt_outs"] = stats.opt_outs
    return outcome


def _reasons(rejects_file: str | None) -> dict[str, int]:
    if rejects_file is None:
        return {}
    with Path(rejects_file).open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    # The reason reads 号码 'x' 无效：位数太少 — count by what follows the colon.
    return dict(Counter(row[1].split("：", 1)[-1] for row in rows))
