"""Campaign planning on both databases: the gate's decisions land in the outbox."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from echelon.analytics.reports import campaign_report
from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.audience.suppression import add_suppression
from echelon.campaigns.service import (
    CampaignStateError,
    campaign_status,
    cancel_campaign,
    create_campaign,
    list_campaigns,
    pause_campaign,
    preview_campaign,
    resume_campaign,
    start_campaign,
)
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import TemplateNotApproved, create_template
from echelon.db.outbox import messages
from echelon.db.tables import contacts
from echelon.workspaces.service import Workspace, update_settings

NOON = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NIGHT = datetime(2026, 11, 11, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
BODY = "{{ name | default('会员') }}您好，双11会员专享{{ 会员等级 }}券已到账"


def audience_file(path: Path) -> Path:
    rows = [
        ["手机号", "姓名", "会员等级", "营销同意", "标签"],
        ["13800138000", "张三", "金卡", "是", "VIP"],
        ["13900139000", "李四", "银卡", "是", "VIP"],
        ["13700137000", "王五", "金卡", "否", "VIP"],
        ["13600136000", "赵六", "", "是", ""],
        ["13500135000", "", "金卡", "是", "VIP"],
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture
def shop(engine: Engine, workspace: Workspace, tmp_path: Path) -> Workspace:
    import_contacts(
        engine,
        workspace=workspace,
        path=audience_file(tmp_path / "a.csv"),
        options=ContactImportOptions(consent_source="checkout_checkbox"),
        now=NOON,
    )
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    create_template(
        engine,
        workspace_id=workspace.id,
        name="d11",
        kind="marketing",
        body=BODY,
        signature=None,
        actor="运营",
        now=NOON,
    )
    add_suppression(
        engine,
        workspace_id=workspace.id,
        phone="13900139000",
        kind="opt_out",
        source="reply",
        reason="TD",
        now=NOON,
    )
    return workspace


def campaign(engine: Engine, ws: Workspace, name: str = "双11预热", **extra: object) -> None:
    args: dict[str, object] = {
        "audience": {"kind": "all"},
        "send_at": None,
        "ends_at": None,
        "throttle_per_second": None,
        "budget_yuan": None,
    }
    args.update(extra)
    create_campaign(engine, workspace_id=ws.id, name=name, template="d11", now=NOON, **args)  # type: ignore[arg-type]


def approve(engine: Engine, ws: Workspace) -> None:
    submit_template(engine, workspace_id=ws.id, name="d11", actor="运营", now=NOON)
    approve_template(engine, workspace_id=ws.id, name="d11", actor="审核", now=NOON)


def test_only_an_approved_template_is_planned(engine: Engine, shop: Workspace) -> None:
    campaign(engine, shop)
    with pytest.raises(TemplateNotApproved):
        start_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 0


def test_preview_and_start_agree_and_record_every_refusal(engine: Engine, shop: Workspace) -> None:
    approve(engine, shop)
    campaign(engine, shop)
    preview = preview_campaign(engine, workspace_id=shop.id, name="双11预热", samples=2, now=NOON)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 0
    assert preview["audience"] == 5
    assert preview["blocked"] == {"no_consent": 1, "opt_out": 1, "render_failed": 1}
    assert preview["planned"] == 2
    assert (
        preview["samples"][0]["text"]
        == "【星河商城】张三您好，双11会员专享金卡券已到账，拒收请回复R"
    )
    assert preview["cost_yuan"] == "0.12"
    started = start_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON)
    assert {k: started[k] for k in ("planned", "blocked", "cost_yuan")} == {
        k: preview[k] for k in ("planned", "blocked", "cost_yuan")
    }
    status = campaign_status(engine, workspace_id=shop.id, name="双11预热")
    assert status["by_status"] == {"queued": 2, "blocked": 3}
    assert status["blocked"] == {"no_consent": 1, "opt_out": 1, "render_failed": 1}
    with pytest.raises(CampaignStateError):
        start_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON)


def test_each_message_records_where_its_recipient_was_when_planned(
    engine: Engine, shop: Workspace
) -> None:
    approve(engine, shop)
    campaign(engine, shop)
    start_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON)
    with engine.begin() as conn:
        planned = {
            phone: (carrier, province)
            for phone, carrier, province in conn.execute(
                select(messages.c.phone, messages.c.carrier, messages.c.province)
            )
        }
        # The contacts move on; their messages keep where they were sent.
        conn.execute(update(contacts).values(carrier="china_broadnet", province="西藏自治区"))
    assert planned == {
        "+8613800138000": ("china_mobile", "北京市"),
        "+8613900139000": ("china_mobile", "上海市"),  # blocked rows record it too
        "+8613700137000": ("china_mobile", "辽宁省"),
        "+8613600136000": ("china_mobile", "广东省"),
        "+8613500135000": ("china_mobile", "广东省"),
    }
    by_province = campaign_report(engine, workspace_id=shop.id, campaign="双11预热", by="province")
    assert {g.key: g.metrics.planned for g in by_province.groups} == {
        "北京市": 1,
        "上海市": 1,
        "辽宁省": 1,
        "广东省": 2,
    }


def test_quiet_hours_move_a_night_send_to_the_morning(engine: Engine, shop: Workspace) -> None:
    approve(engine, shop)
    campaign(engine, shop, send_at=NIGHT, audience={"kind": "tag", "tag": "VIP"})
    start_campaign(engine, workspace_id=shop.id, name="双11预热", now=NIGHT - timedelta(hours=1))
    with engine.connect() as conn:
        due = (
            conn.execute(select(messages.c.due_at).where(messages.c.status == "queued"))
            .scalars()
            .all()
        )
    # 张三 and the nameless member (greeted as 会员) go at 08:00 next day in Shanghai.
    assert due == [datetime(2026, 11, 12, 0, 0, tzinfo=UTC)] * 2


def test_the_cap_holds_across_campaigns(engine: Engine, shop: Workspace) -> None:
    approve(engine, shop)
    campaign(engine, shop, name="第一波")
    start_campaign(engine, workspace_id=shop.id, name="第一波", now=NOON)
    campaign(engine, shop, name="第二波", send_at=NOON + timedelta(hours=2))
    second = start_campaign(engine, workspace_id=shop.id, name="第二波", now=NOON)
    assert second["planned"] == 0
    assert second["blocked"]["min_gap"] == 2
    listed = list_campaigns(engine, workspace_id=shop.id)
    assert [(c.name, c.status, c.template) for c in listed] == [
        ("第二波", "running", "d11"),
        ("第一波", "running", "d11"),
    ]


def test_budget_stops_planning(engine: Engine, shop: Workspace) -> None:
    approve(engine, shop)
    campaign(engine, shop, budget_yuan=Decimal("0.06"))
    started = start_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON)
    assert started["planned"] == 1
    assert started["blocked"]["budget"] == 1


def test_pause_resume_cancel(engine: Engine, shop: Workspace) -> None:
    approve(engine, shop)
    campaign(engine, shop)
    start_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON)
    assert pause_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON) == 2
    status = campaign_status(engine, workspace_id=shop.id, name="双11预热")
    assert status["by_status"]["planned"] == 2
    assert status["campaign"]["status"] == "paused"
    assert resume_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON) == 2
    assert cancel_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON) == 2
    status = campaign_status(engine, workspace_id=shop.id, name="双11预热")
    assert status["by_status"] == {"cancelled": 2, "blocked": 3}
    with pytest.raises(CampaignStateError):
        resume_campaign(engine, workspace_id=shop.id, name="双11预热", now=NOON)
