"""Campaign service: create, edit a draft, preview, start (plan the outbox), pause,
resume, cancel, status. One transaction per call, except that planning commits page
by page (see ``start_campaign``); nothing is written by a preview."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, Select, insert, select, update

from echelon.campaigns import queries
from echelon.campaigns.metering import E4, Meter, yuan
from echelon.campaigns.models import STATUS_LABELS, Audience, Campaign, Experiment
from echelon.campaigns.planner import (
    TRACKED,
    PlanArm,
    Planner,
    PlanRequest,
    PlanSummary,
    Progress,
)
from echelon.campaigns.planning import PageWriter, PlanningProcess, outbox_rows
from echelon.compliance.policy import load_policy
from echelon.content.templates import approved_template_in
from echelon.content.templates import load as load_template
from echelon.content.workspace_words import workspace_checker
from echelon.db.outbox import campaigns, channels
from echelon.db.tables import templates
from echelon.errors import EchelonError, InvalidInput, NotFound
from echelon.segments.service import live_segment_in, segment_id_in, snapshot_in
from echelon.tracking.links import CampaignTracking, Issued
from echelon.validation import explain
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
    experiment: dict[str, Any] | None = None,
    channel: str | None = None,
) -> Campaign:
    """A draft campaign; its template must exist (approval is checked at start), and so
    must every variant's template and every channel it names."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("活动名称须为 1–100 个字")
    test = None if experiment is None else _experiment(experiment)
    with engine.begin() as conn:
        settings = _draft_settings(
            conn,
            workspace_id,
            template=template,
            audience=audience,
            send_at=send_at,
            ends_at=ends_at,
            throttle_per_second=throttle_per_second,
            budget_yuan=budget_yuan,
            experiment=test,
            channel=channel,
        )
        if _find(conn, workspace_id, name) is not None:
            raise InvalidInput(f"活动「{name}」已存在")
        conn.execute(
            insert(campaigns).values(
                workspace_id=workspace_id,
                name=name,
                status="draft",
                created_at=now,
                experiment=None if test is None else test.model_dump(mode="json"),
                **settings,
            )
        )
        return campaign_in(conn, workspace_id, name)


def edit_campaign(
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
    channel: str | None,
    now: datetime,
) -> Campaign:
    """Replace a draft's template, audience, schedule, throttle, budget and channel,
    checked exactly as ``create_campaign`` checks them (its A/B test is kept). Once a
    campaign has started it is what was planned: ``CampaignStateError``."""
    with engine.begin() as conn:
        campaign = campaign_in(conn, workspace_id, name)
        _check_draft(campaign)
        settings = _draft_settings(
            conn,
            workspace_id,
            template=template,
            audience=audience,
            send_at=send_at,
            ends_at=ends_at,
            throttle_per_second=throttle_per_second,
            budget_yuan=budget_yuan,
            experiment=campaign.experiment,
            channel=channel,
        )
        # Only while still a draft: a start that committed meanwhile wins.
        changed = conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign.id, campaigns.c.status == "draft")
            .values(**settings)
        ).rowcount
        if changed != 1:
            _check_draft(campaign_in(conn, workspace_id, name))
        return campaign_in(conn, workspace_id, name)


def draft_campaign(engine: Engine, *, workspace_id: int, name: str) -> Campaign:
    """The campaign ``name`` while it is a draft (to edit); ``CampaignStateError`` once
    it has started."""
    with engine.connect() as conn:
        campaign = campaign_in(conn, workspace_id, name)
    _check_draft(campaign)
    return campaign


def _check_draft(campaign: Campaign) -> None:
    if campaign.status != "draft":
        raise CampaignStateError(
            f"活动「{campaign.name}」{STATUS_LABELS[campaign.status]}，"
            "已开始的活动不能修改，只有草稿可以修改"
        )


def _draft_settings(
    conn: Connection,
    workspace_id: int,
    *,
    template: str,
    audience: dict[str, Any],
    send_at: datetime | None,
    ends_at: datetime | None,
    throttle_per_second: int | None,
    budget_yuan: Decimal | None,
    experiment: Experiment | None,
    channel: str | None,
) -> dict[str, Any]:
    """The columns a draft's settings are stored in, each checked: the audience's
    shape and segment, the times, throttle and budget, the templates and channels
    named (the campaign's and its variants')."""
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
    template_row = load_template(conn, workspace_id=workspace_id, name=template)
    variants = experiment.variants if experiment else []
    for variant in variants:
        if variant.template is not None:
            load_template(conn, workspace_id=workspace_id, name=variant.template)
    named = {channel} | {v.channel for v in variants}
    channel_ids_in(conn, workspace_id, {n for n in named if n is not None})
    if target.kind == "segment" and target.segment is not None:
        segment_id = segment_id_in(conn, workspace_id=workspace_id, segment=target.segment)
        target = target.model_copy(update={"segment": segment_id})
    return {
        "template_id": template_row.id,
        "audience": target.model_dump(exclude_none=True),
        "send_at": send_at,
        "ends_at": ends_at,
        "throttle_per_second": throttle_per_second,
        "budget_e4": None if budget_yuan is None else int(budget_yuan * E4),
        "channels": None if channel is None else [channel],
    }


def preview_campaign(
    engine: Engine, *, workspace_id: int, name: str, samples: int, now: datetime
) -> dict[str, Any]:
    """Audience size, who would be blocked and why, sample texts, parts and cost —
    by the same steps that plan, with nothing written (a short transaction a page)."""
    with engine.connect() as conn:
        campaign = campaign_in(conn, workspace_id, name)
        planner = campaign_planner(conn, workspace_id, campaign, now, samples=samples)
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
        campaign = campaign_in(conn, workspace_id, name)
        if campaign.status not in ("draft", "planning"):
            raise CampaignStateError(
                f"活动「{name}」{STATUS_LABELS[campaign.status]}，只有草稿可以开始"
            )
        if campaign.status == "draft":
            campaign = _freeze_segment(conn, workspace_id, campaign, now)
        planner = campaign_planner(conn, workspace_id, campaign, now, samples=0, write=True)
        cursor = 0
        if campaign.status == "planning":
            cursor = queries.planning_cursor(conn, campaign.id)[1] or 0
            planner.resume(*queries.planned_so_far(conn, campaign.id))
        else:
            set_status(conn, campaign.id, "planning")
            queries.set_planning_cursor(conn, campaign.id, cursor)
    test = campaign.experiment

    def running(conn: Connection) -> None:
        rollout_due = None
        if test is not None and test.mode == "test" and test.decision is None:
            tested = max(arm.send_at for arm in planner.arms)
            rollout_due = tested + timedelta(hours=test.window_hours)
        set_status(conn, campaign.id, "running", started_at=now)
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign.id)
            .values(rollout_due_at=rollout_due)
        )

    summary = plan_pages(engine, campaign, planner, cursor, now, progress, finish=running)
    return _summary_json(campaign, summary)


def plan_pages(
    engine: Engine,
    campaign: Campaign,
    planner: Planner,
    cursor: int,
    now: datetime,
    progress: Progress | None,
    *,
    finish: Callable[[Connection], None],
) -> PlanSummary:
    """Plan the pages after ``cursor`` into the outbox, each page with its cursor in one
    transaction; then clear the cursor and ``finish`` (set the campaign's next state)
    in one more. The campaign must be ``planning``."""
    summary = planner.summary
    tracking = planner.request.tracking
    if progress and cursor:
        progress(summary.queued + summary.blocked.total() + summary.skipped, summary.audience)

    def write_page(
        conn: Connection,
        rows: list[tuple[Any, ...]],
        issued: Issued | None,
        after: int,
        through: int,
    ) -> None:
        _check_planning(conn, campaign, after)
        queries.write_planned(conn, rows)
        if tracking is not None and issued is not None:
            tracking.store(conn, issued)
        queries.set_planning_cursor(conn, campaign.id, through)

    # The child is forked first: no thread may run in a process that forks.
    with (
        PlanningProcess(engine, planner, after_id=cursor) as planning,
        PageWriter(engine, write_page) as writer,
    ):
        for judged in planning.pages():
            if tracking is not None:
                tracking.adopt_placeholders(judged.placeholders)
            rows = planner.bill(judged.page, judged.decided)
            written = outbox_rows(engine, planner, rows, now=now)
            issued = None if tracking is None else tracking.take_issued()
            writer.write(written, issued, cursor, judged.page.last_id)
            cursor = judged.page.last_id
            if progress:
                progress(len(rows) + judged.page.skipped, summary.audience)
    with engine.begin() as conn:
        _check_planning(conn, campaign, cursor)
        queries.set_planning_cursor(conn, campaign.id, None)
        finish(conn)
    return summary


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
        campaign = campaign_in(conn, workspace_id, name)
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


def campaign_planner(
    conn: Connection,
    workspace_id: int,
    campaign: Campaign,
    now: datetime,
    *,
    samples: int,
    write: bool = False,
) -> Planner:
    """The planner of the campaign's next stage: everyone, or for an A/B test before a
    roll-out the test share and the holdout, then (once decided) the rest."""
    template = approved_template_in(conn, workspace_id=workspace_id, name=campaign.template)
    send_at = max(campaign.send_at or now, now)
    test = campaign.experiment
    named = [campaign.channel, *(v.channel for v in test.variants)] if test else [campaign.channel]
    channel_ids = channel_ids_in(conn, workspace_id, {name for name in named if name})
    default_channel = channel_ids.get(campaign.channel) if campaign.channel else None
    arms: tuple[PlanArm, ...] = ()
    stage: Literal["test", "rollout"] = "test"
    if test is not None:
        arms = tuple(
            PlanArm(
                variant.name,
                template
                if variant.template is None
                else approved_template_in(conn, workspace_id=workspace_id, name=variant.template),
                max(variant.send_at, now) if variant.send_at else send_at,
                channel_ids[variant.channel] if variant.channel else default_channel,
                variant.link,
            )
            for variant in test.variants
        )
        if any(arm.template.kind != template.kind for arm in arms):
            raise InvalidInput("A/B 测试各版本的模板须同为营销类（或同为服务类）")
        if test.decision is not None:
            stage = "rollout"
            chosen = next(a for a in arms if a.variant == test.decision["chosen"])
            arms = (replace(chosen, send_at=send_at),)
    plan_ = settings_in(conn, workspace_id=workspace_id).price_plan
    local = send_at.astimezone(ZoneInfo(plan_.timezone))
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    meter = Meter(
        plan_,
        month=(local.year, local.month),
        used_this_month=queries.parts_this_month(conn, workspace_id, month_start),
    )
    audience = _live_segment(conn, workspace_id, campaign.audience, now)
    uses = set().union(*(arm.template.compiled.variables for arm in arms or ()))
    uses |= template.compiled.variables
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
        channel_id=default_channel,
        arms=arms,
        split=None if test is None else test.split,
        stage=stage,
        tracking=CampaignTracking.open(
            conn,
            workspace_id=workspace_id,
            campaign_id=campaign.id,
            uses=uses,
            write=write,
            now=now,
        )
        if uses & TRACKED
        else None,
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
        campaign = campaign_in(conn, workspace_id, name)
        if campaign.status not in allowed:
            raise CampaignStateError(
                f"活动「{name}」{STATUS_LABELS[campaign.status]}，不能改为{STATUS_LABELS[to]}"
            )
        moved = queries.move_messages(
            conn, campaign.id, from_statuses=from_messages, to=to_messages, now=now
        )
        set_status(conn, campaign.id, to, finished_at=now if to == "cancelled" else None)
    return moved


def set_status(conn: Connection, campaign_id: int, status: str, **times: datetime | None) -> None:
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
        experiment=None if row.experiment is None else Experiment.model_validate(row.experiment),
        channel=(row.channels or [None])[0],
        rollout_due_at=row.rollout_due_at,
    )


def _experiment(document: dict[str, Any]) -> Experiment:
    if document.get("decision") is not None:
        raise InvalidInput("A/B 测试设置有误：decision 由系统在测试窗口结束后填写")
    try:
        return Experiment.model_validate(document)
    except ValidationError as exc:
        problems = [
            f"{' › '.join(str(part) for part in e['loc']) or '定义'}：{explain(e)}"
            for e in exc.errors()
        ]
        raise InvalidInput(f"A/B 测试设置有误：{'；'.join(problems[:3])}") from exc


def channel_ids_in(conn: Connection, workspace_id: int, names: set[str]) -> dict[str, int]:
    """Channel name → id for ``names``; an unknown name is an error that names it."""
    if not names:
        return {}
    found = {
        row.name: row.id
        for row in conn.execute(
            select(channels.c.name, channels.c.id).where(
                channels.c.workspace_id == workspace_id, channels.c.name.in_(sorted(names))
            )
        )
    }
    missing = sorted(names - found.keys())
    if missing:
        raise InvalidInput(f"通道「{'、'.join(missing)}」不存在")
    return found


def campaign_in(conn: Connection, workspace_id: int, name: str) -> Campaign:
    found = _find(conn, workspace_id, name)
    if found is None:
        raise CampaignNotFound(name)
    return found


def _campaign_json(campaign: Campaign) -> dict[str, Any]:
    data = asdict(campaign)
    data["audience"] = campaign.audience.model_dump(exclude_none=True)
    data["experiment"] = (
        None if campaign.experiment is None else campaign.experiment.model_dump(mode="json")
    )
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
