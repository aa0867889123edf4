"""Campaigns: create (with an A/B test), preview (writes nothing), start (plans the
outbox through the gate), pause, resume, cancel, status, list; an A/B test's report
and its decision."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from echelon.access.models import Principal
from echelon.api.auth import State, require
from echelon.api.encoding import plain
from echelon.api.params import AwareTime, NamePath, audit
from echelon.campaigns.models import Audience, Campaign, Experiment
from echelon.campaigns.rollout import decide_campaign, experiment_report
from echelon.campaigns.service import (
    campaign_status,
    cancel_campaign,
    create_campaign,
    list_campaigns,
    pause_campaign,
    preview_campaign,
    resume_campaign,
    start_campaign,
)

router = APIRouter(tags=["群发活动"])

Reader = Annotated[Principal, Depends(require("campaigns:read"))]
Writer = Annotated[Principal, Depends(require("campaigns:write"))]


class NewCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    template: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="已审核通过的模板名称（开始时检查）"
    )
    audience: Audience = Audience()
    send_at: AwareTime | None = None
    ends_at: AwareTime | None = None
    throttle_per_second: Annotated[int, Field(ge=1, le=100_000)] | None = None
    budget_yuan: Annotated[Decimal, Field(gt=0, le=1_000_000_000, decimal_places=2)] | None = None
    channel: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="优先使用的通道名称"
    )
    experiment: Experiment | None = Field(
        default=None, description="A/B 测试：2–5 个版本、分流比例、对照组、先测后推或纯分流"
    )


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    data: dict[str, Any] = plain(campaign)
    data.pop("template_id", None)
    budget = data.pop("budget_e4")
    data["budget_yuan"] = None if budget is None else str(Decimal(budget) / 10_000)
    return data


@router.get("/campaigns", summary="活动列表（最新在前）")
def campaigns(principal: Reader, state: State) -> Any:
    return [
        campaign_json(c) for c in list_campaigns(state.engine, workspace_id=principal.workspace_id)
    ]


@router.post("/campaigns", status_code=201, summary="新建活动（草稿）")
def create(body: NewCampaign, principal: Writer, state: State) -> Any:
    return campaign_json(
        create_campaign(
            state.engine,
            workspace_id=principal.workspace_id,
            name=body.name,
            template=body.template,
            audience=body.audience.model_dump(exclude_none=True),
            send_at=body.send_at,
            ends_at=body.ends_at,
            throttle_per_second=body.throttle_per_second,
            budget_yuan=body.budget_yuan,
            now=datetime.now(UTC),
            experiment=None
            if body.experiment is None
            else body.experiment.model_dump(mode="json", exclude_none=True),
            channel=body.channel,
        )
    )


@router.get(
    "/campaigns/{name}/experiment",
    summary="A/B 测试结果：各版本指标与 95% 置信区间、结论与理由、对照组提升",
)
def experiment(name: NamePath, principal: Reader, state: State) -> Any:
    return plain(
        experiment_report(
            state.engine, workspace_id=principal.workspace_id, name=name, now=datetime.now(UTC)
        )
    )


@router.post(
    "/campaigns/{name}/decide",
    summary="选出胜出版本并发给其余受众（测试窗口结束后发送进程会自动执行）",
)
def decide(
    name: NamePath,
    principal: Writer,
    state: State,
    early: Annotated[bool, Query(description="测试窗口结束前就决定")] = False,
) -> Any:
    report = decide_campaign(
        state.engine,
        workspace_id=principal.workspace_id,
        name=name,
        now=datetime.now(UTC),
        early=early,
    )
    audit(state, principal, "campaign.decide", f"campaign:{name}", report["decision"] or {})
    return plain(report)


@router.get("/campaigns/{name}", summary="活动进度：各状态条数、不发送与失败原因、费用")
def status(name: NamePath, principal: Reader, state: State) -> Any:
    return plain(campaign_status(state.engine, workspace_id=principal.workspace_id, name=name))


@router.post(
    "/campaigns/{name}/preview", summary="预览：受众、不发送原因、示例短信、费用（不写入）"
)
def preview(
    name: NamePath,
    principal: Reader,
    state: State,
    samples: Annotated[int, Query(ge=0, le=50)] = 3,
) -> Any:
    return plain(
        preview_campaign(
            state.engine,
            workspace_id=principal.workspace_id,
            name=name,
            samples=samples,
            now=datetime.now(UTC),
        )
    )


@router.post("/campaigns/{name}/start", summary="开始：为每位收件人规划短信（经合规闸门）")
def start(name: NamePath, principal: Writer, state: State) -> Any:
    summary = start_campaign(
        state.engine, workspace_id=principal.workspace_id, name=name, now=datetime.now(UTC)
    )
    audit(
        state,
        principal,
        "campaign.start",
        f"campaign:{name}",
        {k: summary[k] for k in ("audience", "planned", "parts", "cost_yuan")},
    )
    return plain(summary)


def _moved(action: str, name: str, moved: int) -> dict[str, Any]:
    return {"campaign": name, "action": action, "messages": moved}


@router.post("/campaigns/{name}/pause", summary="暂停：未提交的短信保持等待")
def pause(name: NamePath, principal: Writer, state: State) -> Any:
    moved = pause_campaign(
        state.engine, workspace_id=principal.workspace_id, name=name, now=datetime.now(UTC)
    )
    return _moved("pause", name, moved)


@router.post("/campaigns/{name}/resume", summary="恢复发送")
def resume(name: NamePath, principal: Writer, state: State) -> Any:
    moved = resume_campaign(
        state.engine, workspace_id=principal.workspace_id, name=name, now=datetime.now(UTC)
    )
    return _moved("resume", name, moved)


@router.post("/campaigns/{name}/cancel", summary="取消：尚未提交的短信不再发送")
def cancel(name: NamePath, principal: Writer, state: State) -> Any:
    moved = cancel_campaign(
        state.engine, workspace_id=principal.workspace_id, name=name, now=datetime.now(UTC)
    )
    audit(state, principal, "campaign.cancel", f"campaign:{name}", {"messages": moved})
    return _moved("cancel", name, moved)
