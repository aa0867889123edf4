"""Campaign service: create, preview, start (plan the outbox), pause, resume, cancel,
status. One transaction per call, except that planning commits page by page (see
``start_campaign``); nothing is written by a preview."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, Select, insert, select, update

from echelon.campaigns import queries
from echelon.campaigns.metering import E4, Meter, yuan
from echelon.campaigns.models import STATUS_LABELS, Audience, Campaign
from echelon.campaigns.planner import Planner, PlanRequest, PlanSummary, Progress
from echelon.campaigns.planning import PageWriter, PlanningProcess, outbox_rows
from echelon.compliance.policy import load_policy
from echelon.content.templates import approved_template_in, get_template
from echelon.content.workspace_words import workspace_checker
from echelon.db.outbox import campaigns
from echelon.db.tables import templates
from echelon.errors import EchelonError, InvalidInput, NotFound
from echelon.segments.service import live_segment_in, segment_id_in, snapshot_in
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
        if target.kind == "segment" and target.segment is not None:
            segment_id = segment_id_in(conn, workspace_id=workspace_id, segment=target.segment)
            target = target.model_copy(update={"segment": segment_id})
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
    by the same steps that plan, with nothing written (a short transaction a page)."""
    with engine.connect() as conn:
        campaign = _get(conn, workspace_id, name)
        planner = _planner(conn, workspace_id, campaign, now, samples=samples)
        queries.tune_for_pages(conn)
        page = planner.read_page(conn, after_id=0)
    while page is not None:
        composed = planner.compose(page)
        with engine.connect() as conn:
            queries.tune_for_pages(conn)
            planner.decide(conn, composed)
            page = planner.read_page(conn, after_id=composed.last_id)
    return _summary_json(campaign, planner.summary)


def start_campaign(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    now: datetime,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Plan every recipient into the outbox, then set the campaign running.

    A forked process plans (``campaigns.planning``) while this one writes, a page per
    transaction with the last contact planned as the campaign's cursor; meanwhile the
    campaign is ``planning``. SQLite's single writer is free between pages, and no page
    is ever half-written. A plan that stopped part-way — a crash, an error — stays
    ``planning``: starting it again resumes after the cursor; cancelling it stops it.
    A written page's messages are real, gated and billed, and may go out at once.
    """
    with engine.begin() as conn:
        campaign = _get(conn, workspace_id, name)
        if campaign.status not in ("draft", "planning"):
            raise CampaignStateError(
                f"活动「{name}」{STATUS_LABELS[campaign.status]}，只有草稿可以开始"
            )
        if campaign.status == "draft":
            campaign = _freeze_segment(conn, workspace_id, campaign, now)
        planner = _planner(conn, workspace_id, campaign, now, samples=0)
        cursor = 0
        if campaign.status == "planning":
            cursor = queries.planning_cursor(conn, campaign.id)[1] or 0
            planner.resume(*queries.planned_so_far(conn, campaign.id))
        else:
            _set_status(conn, campaign.id, "planning")
            queries.set_planning_cursor(conn, campaign.id, cursor)
    summary = planner.summary
    if progress and cursor:
        progress(summary.queued + summary.blocked.total(), summary.audience)

    def write_page(conn: Connection, rows: list[tuple[Any, ...]], after: int, through: int) -> None:
        _check_planning(conn, campaign, after)
        queries.write_planned(conn, rows)
        queries.set_planning_cursor(conn, campaign.id, through)

    # The child is forked first: no thread may run in a process that forks.
    with (
        PlanningProcess(engine, planner, after_id=cursor) as planning,
        PageWriter(engine, write_page) as writer,
    ):
        for judged in planning.pages():
            rows = planner.bill(judged.page, judged.decided)
            writer.write(outbox_rows(engine, planner, rows, now=now), cursor, judged.page.last_id)
            cursor = judged.page.last_id
            if progress:
                progress(len(rows), summary.audience)
    with engine.begin() as conn:
        _check_planning(conn, campaign, cursor)
        queries.set_planning_cursor(conn, campaign.id, None)
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
        ("draft", "planning", "running", "paused"),
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


def _planner(
    conn: Connection, workspace_id: int, campaign: Campaign, now: datetime, *, samples: int
) -> Planner:
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
    audience = _live_segment(conn, workspace_id, campaign.audience, now)
    request = PlanRequest(
        workspace_id=workspace_id,
        campaign_id=campaign.id,
        audience=audience,
        template=template,
        policy=load_policy(conn, workspace_id),
        checker=workspace_checker(conn, workspace_id=workspace_id),
        send_at=send_at,
        ends_at=campaign.ends_at,
        budget_e4=campaign.budget_e4,
        samples=samples,
    )
    summary = PlanSummary(audience=queries.audience_size(conn, workspace_id, audience))
    return Planner(request, meter, summary)


def _freeze_segment(
    conn: Connection, workspace_id: int, campaign: Campaign, now: datetime
) -> Campaign:
    """A segment audience snapshotted as the campaign starts (stored with the campaign),
    so that its audience does not shift while it is planned and sent."""
    audience = campaign.audience
    if audience.kind != "segment" or audience.snapshot is not None:
        return campaign
    snapshot = snapshot_in(
        conn,
        workspace_id=workspace_id,
        segment_id=segment_id_in(conn, workspace_id=workspace_id, segment=audience.segment or 0),
        campaign_id=campaign.id,
        now=now,
    )
    frozen = audience.model_copy(update={"snapshot": snapshot.id})
    conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign.id)
        .values(audience=frozen.model_dump(exclude_none=True))
    )
    return replace(campaign, audience=frozen)


def _live_segment(
    conn: Connection, workspace_id: int, audience: Audience, now: datetime
) -> Audience:
    """A segment audience not yet snapshotted (a preview), evaluated as of ``now``."""
    if audience.kind != "segment" or audience.snapshot is not None:
        return audience
    segment_id = segment_id_in(conn, workspace_id=workspace_id, segment=audience.segment or 0)
    live = live_segment_in(conn, workspace_id=workspace_id, segment_id=segment_id, now=now)
    return audience.model_copy(update={"live": live})


def _check_planning(conn: Connection, campaign: Campaign, cursor: int) -> None:
    """Still ``planning`` from ``cursor``: not cancelled, and no other process moved on."""
    status, stored = queries.planning_cursor(conn, campaign.id)
    if status != "planning":
        raise CampaignStateError(f"活动「{campaign.name}」{STATUS_LABELS[status]}，规划已停止")
    if stored != cursor:
        raise CampaignStateError(f"活动「{campaign.name}」正由另一个进程规划，本次规划已停止")


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
