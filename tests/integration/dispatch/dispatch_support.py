"""Helpers for the dispatcher tests: a shop with consenting customers, an approved
template, a started campaign, and channels pointing at simulator processes."""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.campaigns.service import create_campaign, start_campaign
from echelon.channels.simulator import LogNormalDelay, SimulatorConfig, SimulatorProcess
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.outbox import messages
from echelon.dispatch.channel_admin import add_channel, smpp_config
from echelon.dispatch.dispatcher import Dispatcher, DispatchOptions, DispatchStats
from echelon.workspaces.service import Workspace, update_settings

NOON = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: inside the window
FAST = LogNormalDelay(median_ms=5, p95_ms=20)


def phones(count: int, prefix: str = "1380013") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


def clock_from(start: datetime) -> Callable[[], datetime]:
    """A clock that starts at ``start`` and runs at real speed."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def shop_with_campaign(
    engine: Engine,
    workspace: Workspace,
    tmp_path: Path,
    numbers: Sequence[str],
    *,
    body: str = "{{ name | default('会员') }}您好，双11会员专享券已到账",
    campaign: str = "双11",
    **campaign_args: Any,
) -> None:
    path = tmp_path / "customers.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "姓名", "营销同意"])
        writer.writerows([number, f"客户{i}", "是"] for i, number in enumerate(numbers))
    import_contacts(
        engine,
        workspace=workspace,
        path=path,
        options=ContactImportOptions(consent_source="checkout_checkbox"),
        now=NOON,
    )
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    create_template(
        engine, workspace_id=workspace.id, name="t", kind="marketing", body=body,
        signature=None, actor="运营", now=NOON,
    )  # fmt: skip
    submit_template(engine, workspace_id=workspace.id, name="t", actor="运营", now=NOON)
    approve_template(engine, workspace_id=workspace.id, name="t", actor="审核", now=NOON)
    args: dict[str, Any] = {
        "audience": {"kind": "all"},
        "send_at": None,
        "ends_at": None,
        "throttle_per_second": None,
        "budget_yuan": None,
    } | campaign_args
    create_campaign(
        engine, workspace_id=workspace.id, name=campaign, template="t", now=NOON, **args
    )
    start_campaign(engine, workspace_id=workspace.id, name=campaign, now=NOON)


def sim_config(**settings: Any) -> SimulatorConfig:
    base: dict[str, Any] = {
        "seed": 7,
        "delivery_success_ratio": 1.0,
        "receipt_delay": FAST,
        "reply_delay": FAST,
    }
    return SimulatorConfig.model_validate(base | settings)


def channel_for(
    engine: Engine,
    workspace: Workspace,
    sim: SimulatorProcess,
    name: str = "sim",
    *,
    carriers: Sequence[str] = ("all",),
    weight: int = 1,
    priority: int = 0,
    binds: int = 1,
    **config: Any,
) -> int:
    record = add_channel(
        engine,
        workspace_id=workspace.id,
        name=name,
        config=smpp_config(
            {
                "host": sim.host,
                "port": sim.port,
                "system_id": "echelon",
                "password": "secret",
                "response_timeout": 2.0,
                "bind_wait": 1.0,
            }
            | config
        ),
        carriers=list(carriers),
        weight=weight,
        priority=priority,
        binds=binds,
        now=NOON,
    )
    return record.id


def dispatch(
    engine: Engine,
    *,
    start: datetime = NOON,
    receipt_wait: float = 5.0,
    timeout: float = 60.0,
    **options: Any,
) -> DispatchStats:
    """Run a dispatcher until everything due is final (or ``timeout`` fails the test)."""
    dispatcher = Dispatcher(
        engine,
        options=DispatchOptions(**({"poll_interval": 0.05, "refresh_interval": 0.5} | options)),
        clock=clock_from(start),
    )
    return asyncio.run(
        asyncio.wait_for(dispatcher.run(until_idle=True, receipt_wait=receipt_wait), timeout)
    )


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(messages.c.status, func.count()).group_by(messages.c.status))
        return {status: int(n) for status, n in rows}
