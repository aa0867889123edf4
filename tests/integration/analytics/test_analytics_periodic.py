"""The analytics worker on both databases: purchases credited and breaches raised
without anyone running a report."""

from __future__ import annotations

import asyncio
import csv
from datetime import timedelta
from pathlib import Path

from analytics_support import MORNING, NOW, fill_outbox, phone_of
from sqlalchemy import Engine, select, update

from echelon.analytics.periodic import analytics_pass, run_analytics_worker
from echelon.analytics.reports import list_alerts, set_min_sample
from echelon.audience.importing import import_events
from echelon.db.outbox import campaigns
from echelon.db.tracking import conversions
from echelon.workspaces.service import Workspace


def _purchase(engine: Engine, workspace: Workspace, tmp_path: Path, phone: str) -> None:
    path = tmp_path / "orders.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "事件类型", "时间", "金额", "订单号"])
        writer.writerow([phone, "purchase", (MORNING + timedelta(hours=2)).isoformat(), "88", "P9"])
    report = import_events(
        engine, workspace=workspace, path=path, columns={}, rejects_path=None, now=NOW
    ).to_json()
    assert report["rejected"] == 0, report


def _run(engine: Engine) -> None:
    async def once() -> None:
        stop = asyncio.Event()
        worker = asyncio.create_task(run_analytics_worker(engine, stop=stop, interval=30))
        for _ in range(600):  # until its first pass has credited the order
            await asyncio.sleep(0.05)
            if _credited(engine):
                break
        stop.set()
        await asyncio.wait_for(worker, timeout=30)  # stops at once, not after the interval

    asyncio.run(once())


def _credited(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        query = select(conversions.c.order_id, conversions.c.message_id).where(
            conversions.c.order_id == "P9"
        )
        return [(order, message) for order, message in conn.execute(query)]


def test_a_pass_credits_purchases_then_raises_the_running_campaigns_alerts(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    outbox = fill_outbox(engine, workspace.id)
    set_min_sample(engine, workspace_id=workspace.id, messages=5, now=NOW)
    with engine.connect() as conn:
        phone = phone_of(conn, outbox.contact_ids[1])  # delivered in the morning
    _purchase(engine, workspace, tmp_path, phone)
    done = analytics_pass(engine, now=NOW)
    assert done.alerts == []  # a draft campaign is not checked
    assert dict(done.attributed[workspace.id].credited) == {"delivery": 1}
    assert _credited(engine) == [("P9", outbox.message_ids[1])]
    with engine.begin() as conn:
        conn.execute(
            update(campaigns).where(campaigns.c.id == outbox.campaign_id).values(status="running")
        )
    done = analytics_pass(engine, now=NOW)
    assert done.attributed == {}  # each purchase is examined once
    assert {a.metric for a in done.alerts} == {"delivery_rate", "complaint_rate", "opt_out_rate"}
    advice = {a.metric: a.advice for a in list_alerts(engine, workspace_id=workspace.id)}
    assert advice["delivery_rate"].startswith("送达率低于 95%：检查号码质量")
    assert advice["opt_out_rate"] == "退订率超过 2%：检查发送频率和内容相关性"


def test_the_worker_runs_a_pass_and_stops_when_asked(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    outbox = fill_outbox(engine, workspace.id)
    set_min_sample(engine, workspace_id=workspace.id, messages=5, now=NOW)
    with engine.begin() as conn:
        conn.execute(
            update(campaigns).where(campaigns.c.id == outbox.campaign_id).values(status="running")
        )
        phone = phone_of(conn, outbox.contact_ids[1])
    _purchase(engine, workspace, tmp_path, phone)
    _run(engine)
    assert _credited(engine) == [("P9", outbox.message_ids[1])]
    assert len(list_alerts(engine, workspace_id=workspace.id, open_only=True)) == 3
