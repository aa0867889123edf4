"""Typed values of campaigns: the audience definition and a campaign as stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from echelon.campaigns.experiments import Metric, Split
from echelon.segments.models import LiveSegment

CampaignStatus = Literal["draft", "planning", "running", "paused", "completed", "cancelled"]
STATUS_LABELS = {
    "draft": "草稿",
    "planning": "规划中",
    "running": "发送中",
    "paused": "已暂停",
    "completed": "已完成",
    "cancelled": "已取消",
}


class Audience(BaseModel):
    """Who a campaign is for: every contact with marketing consent, every contact,
    contacts with a tag, the members of an imported list, or of a saved segment. The
    gate still decides who may receive it; whoever it refuses is recorded with the
    reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["consenting", "all", "tag", "list", "segment"] = "consenting"
    tag: str | None = None
    list: str | None = None
    # A saved segment by id or name (stored as its id once the campaign is created).
    segment: int | str | None = None
    # The segment's members frozen when the campaign started: its audience from then on.
    snapshot: int | None = None
    # The segment evaluated at a moment, for a preview; never stored.
    live: LiveSegment | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _needs_its_value(self) -> Audience:
        if self.kind == "tag" and not self.tag:
            raise ValueError("受众为标签时须指定 tag")
        if self.kind == "list" and not self.list:
            raise ValueError("受众为名单时须指定 list")
        if self.kind == "segment" and not self.segment:
            raise ValueError("受众为分群时须指定 segment（分群名称或编号）")
        return self

    def describe(self) -> str:
        return {
            "consenting": "全部有营销同意的联系人",
            "all": "全部联系人",
            "tag": f"标签「{self.tag}」",
            "list": f"名单「{self.list}」",
            "segment": f"分群「{self.segment}」"
            if isinstance(self.segment, str)
            else f"分群 #{self.segment}",
        }[self.kind]


class Variant(BaseModel):
    """One version of an A/B test: what differs from the campaign (its template, send
    time, short-link target or channel) and its share of the tested audience."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=16)
    template: str | None = None  # default: the campaign's template
    send_at: AwareDatetime | None = None  # default: the campaign's send time
    link: str | None = Field(default=None, pattern=r"^https?://\S+$")  # every link() goes here
    channel: str | None = None  # the channel to prefer (default: routing decides)
    weight: float = Field(default=1.0, gt=0)


class Experiment(BaseModel):
    """An A/B test of 2–5 variants. ``split``: every variant to its share of the whole
    audience. ``test``: the variants go to ``test_share`` percent first; after
    ``window_hours`` the winner on ``metric`` — only if significantly better at
    ``confidence`` — goes to the rest, else ``fallback`` (default the first variant,
    the control). ``holdout`` percent of the eligible audience receives nothing, so
    the report can show the lift over not messaging."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variants: list[Variant] = Field(min_length=2, max_length=5)
    mode: Literal["split", "test"] = "split"
    holdout: float = Field(default=0.0, ge=0, lt=50)
    test_share: float = Field(default=20.0, gt=0, le=100)
    window_hours: float = Field(default=4.0, gt=0, le=24 * 14)
    metric: Metric = "click_rate"
    confidence: float = Field(default=0.95, ge=0.5, lt=1)
    fallback: str | None = None  # a variant's name; default the first (the control)
    # Set once decided (mode "test"): the variant sent to the rest and why.
    decision: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("版本名称不能重复")
        if self.fallback is not None and self.fallback not in names:
            raise ValueError(f"fallback「{self.fallback}」不是任何一个版本的名称")
        return self

    @property
    def split(self) -> Split:
        return Split(
            tuple(v.weight for v in self.variants),
            holdout=self.holdout,
            test=self.test_share if self.mode == "test" else 100.0,
        )

    @property
    def fallback_index(self) -> int:
        names = [v.name for v in self.variants]
        return names.index(self.fallback) if self.fallback else 0


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    name: str
    template_id: int
    template: str
    audience: Audience
    send_at: datetime | None
    ends_at: datetime | None
    throttle_per_second: int | None
    budget_e4: int | None
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    experiment: Experiment | None = None
    channel: str | None = None  # the channel the campaign prefers (routing decides if None)
    rollout_due_at: datetime | None = None  # when an A/B test's winner is to be chosen
