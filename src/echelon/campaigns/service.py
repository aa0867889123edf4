"""Campaign service: create, preview, start (plan the outbox), pause, resume, cancel,
status. One transaction per call; nothing is written by a preview."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, Select, insert, select, update

from echelon.campaigns import queries
from echelon.campaigns.metering import E4, Meter, yuan
from echelon.campaigns.models import STATUS_LABELS, Audience, Campaign
from echelon.campaigns.planner import PlanRequest, PlanSummary, Progress, plan
from echelon.compliance.policy import load_policy
from echelon.content.templates import approved_template_in, get_template
from echelon.content.workspace_words import workspace_checker
from echelon.db.outbox import campaigns
from echelon.db.tables import templates
from echelon.errors import EchelonError, InvalidInput, NotFound
from echelon.workspaces.service import settings_in


class CampaignNotFound(NotFound):
    code = "campaign_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"活动「{name}」不存在")


class CampaignStateError(EchelonError):
    code = "campaign_state"
    http_status = 409


def create_campaign(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    template: str,
    audience: dict[str, Any],
    send_at: datetime | None,
    ends_at: datetime | None,
    throttle_per_second: int | None,
    budget_yuan: Decimal | None,
    now: datetime,
) -> Campaign:
    """A draft campaign; its template must exist (approval is checked at start)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("活动名称须为 1–100 个字")
    try:
        target = Audience.model_validate(audience)
    except ValidationError as exc:
        raise InvalidInput(f"受众设置无效：{exc.errors()[0]['msg']}") from exc
    if send_at is not None and ends_at is not None and ends_at <= send_at:
        raise InvalidInput("结束时间须晚于发送时间")
    if throttle_per_second is not None and throttle_per_second < 1:
        raise InvalidInput("发送速度须至少每秒 1 条")
    if budget_yuan is not None and budget_yuan <= 0:
        raise InvalidInput("预算须大于 0")
    template_row = get_template(engine, workspace_id=workspace_id, name=template)
    with engine.begin() as conn:
        if _find(conn, workspace_id, name) is not None:
            raise InvalidInput(f"活动「{name}」已存在")
        conn.execute(
            insert(campaigns).values(
                workspace_id=workspace_id,
                name=name,
                template_id=template_row.id,
                audience=target.model_dump(exclude_none=True),
                send_at=send_at,
                ends_at=ends_at,
                throttle_per_second=throttle_per_second,
                budget_e4=None if budget_yuan is None else int(budget_yuan * E4),
                status="draft",
                created_at=now,
            )
        )
        return _get(conn, workspace_id, name)


def preview_campaign(
    engine: Engine, *, workspace_id: int, name: str, samples: int, now: datetime
) -> dict[str, Any]:
    """Audience size, who would be blocked and why, sample texts, parts and cost —
    by the same pass that plans, with nothing written."""
    with engine.connect() as conn:
        campaign = _get(conn, workspace_id, name)
        summary = _run_plan(conn, workspace_id, campaign, now, samples=samples, write=False)
    return _summary_json(campaign, summary)


def start_campaign(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    now: datetime,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Plan every recipient into the outbox, in one transaction; the campaign runs."""
    with engine.begin() as conn:
        campaign = _get(conn, workspace_id, name)
        if campaign.status != "draft":
            raise CampaignStateError(
                f"活动「{name}」{STATUS_LABELS[campaign.status]}，只有草稿可以开始"
            )
        summary = _run_plan(
            conn, workspace_id, campaign, now, samples=0, write=True, progress=progress
        )
        _set_status(conn, campaign.id, "running", started_at=now)
    return _summary_json(campaign, summary)


def pause_campaign(engine: Engine, *, workspace_id: int, name: str, now: datetime) -> int:
    """Hold every queued message; returns how many were held."""
    return _transition(
        engine, workspace_id, name, now, ("running",), "paused", ("queued",), "planned"
    )


def resume_campaign(engine: Engine, *, workspace_id: int, name: str, now: datetime) -> int:
    return _transition(
        engine, workspace_id, name, now, ("paused",), "running", ("planned",), "queued"
    )


def cancel_campaign(engine: Engine, *, workspace_id: int, name: str, now: datetime) -> int:
    """Stop every message not yet submitted; returns how many were stopped."""
    return _transition(
        engine,
        workspace_id,
        name,
        now,
        ("draft", "running", "paused"),
        "cancelled",
        ("planned", "queued"),
        "cancelled",
    )


def campaign_status(engine: Engine, *, workspace_id: int, name: str) -> dict[str, Any]:
    with engine.connect() as conn:
        campaign = _get(conn, workspace_id, name)
        counts = queries.status_counts(conn, campaign.id)
    cost = counts.pop("cost_e4")
    return {
        "campaign": _campaign_json(campaign),
        **counts,
        "cost_yuan": str(yuan(cost).quantize(Decimal("0.01"))),
    }


def list_campaigns(engine: Engine, *, workspace_id: int) -> list[Campaign]:
    with engine.connect() as conn:
        rows = conn.execute(
            _campaign_query(workspace_id).order_by(
                campaigns.c.created_at.desc(), campaigns.c.id.desc()
            )
        )
        return [_campaign(row) for row in rows]


def _run_plan(
    conn: Connection,
    workspace_id: int,
    campaign: Campaign,
    now: datetime,
    *,
    samples: int,
    write: bool,
    progress: Progress | None = None,
) -> PlanSummary:
    template = approved_template_in(conn, workspace_id=workspace_id, name=campaign.template)
    send_at = max(campaign.send_at or now, now)
    plan_ = settings_in(conn, workspace_id=workspace_id).price_plan
    local = send_at.astimezone(ZoneInfo(plan_.timezone))
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    meter = Meter(
        plan_,
        month=(local.year, local.month),
        used_this_month=queries.parts_this_month(conn, workspace_id, month_start),
    )
    request = PlanRequest(
        workspace_id=workspace_id,
        campaign_id=campaign.id,
        audience=campaign.audience,
        template=template,
        policy=load_policy(conn, workspace_id),
        checker=workspace_checker(conn, workspace_id=workspace_id),
        send_at=send_at,
        ends_at=campaign.ends_at,
        budget_e4=campaign.budget_e4,
        samples=samples,
    )
    return plan(conn, request, meter, now=now, write=write, progress=progress)


def _transition(
    engine: Engine,
    workspace_id: int,
    name: str,
    now: datetime,
    allowed: tuple[str, ...],
    to: str,
    from_messages: tuple[str, ...],
    to_messages: str,
) -> int:
    with engine.begin() as conn:
        campaign = _get(conn, workspace_id, name)
        if campaign.status not in allowed:
            raise CampaignStateError(
                f"活动「{name}」{STATUS_LABELS[campaign.status]}，不能改为{STATUS_LABELS[to]}"
            )
        moved = queries.move_messages(
            conn, campaign.id, from_statuses=from_messages, to=to_messages, now=now
        )
        _set_status(conn, campaign.id, to, finished_at=now if to == "cancelled" else None)
    return moved


def _set_status(conn: Connection, campaign_id: int, status: str, **times: datetime | None) -> None:
    values: dict[str, Any] = {"status": status}
    values.update({k: v for k, v in times.items() if v is not None})
    conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))


def _campaign_query(workspace_id: int) -> Select[Any]:
    return (
        select(campaigns, templates.c.name.label("template_name"))
        .join_from(campaigns, templates, templates.c.id == campaigns.c.template_id)
        .where(campaigns.c.workspace_id == workspace_id)
    )


def _find(conn: Connection, workspace_id: int, name: str) -> Campaign | None:
    row = conn.execute(_campaign_query(workspace_id).where(campaigns.c.name == name)).one_or_none()
    return None if row is None else _campaign(row)


def _campaign(row: Row[Any]) -> Campaign:
    return Campaign(
        id=row.id,
        name=row.name,
        template_id=row.template_id,
        template=row.template_name,
        audience=Audience.model_validate(row.audience),
        send_at=row.send_at,
        ends_at=row.ends_at,
        throttle_per_second=row.throttle_per_second,
        budget_e4=row.budget_e4,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _get(conn: Connection, workspace_id: int, name: str) -> Campaign:
    found = _find(conn, workspace_id, name)
    if found is None:
        raise CampaignNotFound(name)
    return found


def _campaign_json(campaign: Campaign) -> dict[str, Any]:
    data = asdict(campaign)
    data["audience"] = campaign.audience.model_dump(exclude_none=True)
    budget = data.pop("budget_e4")
    data["budget_yuan"] = None if budget is None else str(yuan(budget))
    return data


def _summary_json(campaign: Campaign, summary: PlanSummary) -> dict[str, Any]:
    return {
        "campaign": campaign.name,
        "audience": summary.audience,
        "planned": summary.queued,
        "blocked": dict(summary.blocked),
        "parts": summary.parts,
        "cost_yuan": str(yuan(summary.cost_e4).quantize(Decimal("0.01"))),
        "samples": summary.samples,
    }
