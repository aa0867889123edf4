"""A segment as a campaign's audience: previewed live, frozen in a snapshot when the
campaign starts, so later events do not shift who it is for."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from segments_support import SHOP_NOW, write_csv
from sqlalchemy import Engine, select

from echelon.audience.importing import import_events
from echelon.campaigns import queries
from echelon.campaigns.service import (
    create_campaign,
    list_campaigns,
    preview_campaign,
    start_campaign,
)
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.outbox import messages
from echelon.db.segments import segment_snapshot_members, segment_snapshots
from echelon.errors import InvalidInput
from echelon.segments.service import (
    SegmentNotFound,
    count_segment,
    create_segment,
    get_segment,
)
from echelon.workspaces.service import Workspace, update_settings

NOW = SHOP_NOW
RECENT_BUYERS = {"kind": "purchases", "measure": "count", "days": 30, "min": 1}


@pytest.fixture
def ready(engine: Engine, shop: Workspace) -> Workspace:
    update_settings(engine, workspace_id=shop.id, signature="星河商城")
    create_template(
        engine,
        workspace_id=shop.id,
        name="回购",
        kind="marketing",
        body="{{ name }}您好，老客回购满200减30",
        actor="运营",
        now=NOW,
    )
    submit_template(engine, workspace_id=shop.id, name="回购", actor="运营", now=NOW)
    approve_template(engine, workspace_id=shop.id, name="回购", actor="审核", now=NOW)
    create_segment(engine, workspace_id=shop.id, name="近期购买", definition=RECENT_BUYERS, now=NOW)
    return shop


def campaign(engine: Engine, ws: Workspace, segment: int | str, name: str = "回购券") -> None:
    create_campaign(
        engine,
        workspace_id=ws.id,
        name=name,
        template="回购",
        audience={"kind": "segment", "segment": segment},
        send_at=None,
        ends_at=None,
        throttle_per_second=None,
        budget_yuan=None,
        now=NOW,
    )


def test_the_audience_is_frozen_when_the_campaign_starts(
    engine: Engine, ready: Workspace, tmp_path: Path
) -> None:
    campaign(engine, ready, "近期购买")
    (created,) = list_campaigns(engine, workspace_id=ready.id)
    segment_id = created.audience.segment
    assert isinstance(segment_id, int)
    assert created.audience.snapshot is None
    # 张三 and 王五 bought in the last 30 days; 王五 gave no marketing consent.
    preview = preview_campaign(engine, workspace_id=ready.id, name="回购券", samples=1, now=NOW)
    assert (preview["audience"], preview["planned"], preview["blocked"]) == (
        2,
        1,
        {"no_consent": 1},
    )
    with engine.connect() as conn:
        assert conn.execute(select(segment_snapshots.c.id)).all() == []

    summary = start_campaign(engine, workspace_id=ready.id, name="回购券", now=NOW)
    assert summary["audience"] == 2
    (started,) = list_campaigns(engine, workspace_id=ready.id)
    snapshot = started.audience.snapshot
    assert snapshot is not None and started.audience.segment == segment_id
    with engine.connect() as conn:
        size, taken_at = conn.execute(
            select(segment_snapshots.c.size, segment_snapshots.c.taken_at)
        ).one()
        frozen = set(conn.execute(select(segment_snapshot_members.c.contact_id)).scalars())
        planned = set(conn.execute(select(messages.c.contact_id)).scalars())
    assert (size, taken_at, len(frozen)) == (2, NOW, 2)
    assert planned == frozen

    # 李四 buys after the start: a member of the segment now, not of the campaign.
    orders = [
        ["手机号", "事件类型", "时间", "金额"],
        ["13900139000", "购买", "2026-11-11 12:30", "99"],
    ]
    import_events(
        engine,
        workspace=ready,
        path=write_csv(tmp_path / "later.csv", orders),
        columns={},
        rejects_path=None,
        now=NOW + timedelta(hours=1),
    )
    later = NOW + timedelta(hours=1)
    assert count_segment(engine, workspace_id=ready.id, segment="近期购买", now=later).total == 3
    with engine.connect() as conn:
        assert queries.audience_size(conn, ready.id, started.audience) == 2


def test_a_segment_audience_by_id_and_an_unknown_one(engine: Engine, ready: Workspace) -> None:
    segment = get_segment(engine, workspace_id=ready.id, segment="近期购买")
    campaign(engine, ready, segment.id)
    (created,) = list_campaigns(engine, workspace_id=ready.id)
    assert created.audience.describe() == f"分群 #{segment.id}"
    with pytest.raises(SegmentNotFound, match="分群「不存在」不存在"):
        campaign(engine, ready, "不存在", name="另一个活动")
    with pytest.raises(InvalidInput, match="须指定 segment"):
        create_campaign(
            engine,
            workspace_id=ready.id,
            name="x",
            template="回购",
            audience={"kind": "segment"},
            send_at=None,
            ends_at=None,
            throttle_per_second=None,
            budget_yuan=None,
            now=NOW,
        )
