"""Typed values of campaigns: the audience definition and a campaign as stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
