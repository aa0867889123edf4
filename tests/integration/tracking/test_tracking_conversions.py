"""Coupons, redemptions and purchase attribution on both databases."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from tracking_support import NOW, add_campaign, deliver, message_of, open_shop, plan_with_tracking

from echelon.audience.importing import import_events
from echelon.db.tracking import conversions, coupons, links
from echelon.errors import InvalidInput
from echelon.tracking.clicks import ClickRecorder, LinkResolver
from echelon.tracking.conversions import attribute_all, attribute_purchases
from echelon.tracking.coupons import (
    CampaignNotFound,
    CouponAlreadyRedeemed,
    CouponNotFound,
    campaign_coupons,
    generate_coupons,
    redeem_coupon,
)
from echelon.tracking.settings import update_tracking_settings
from echelon.workspaces.service import Workspace

SENT = NOW + timedelta(hours=1)
ZHANG, LI, WANG, ZHAO = "+8613800138000", "+8613900139000", "+8613700137000", "+8613600136000"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1"


@pytest.fixture
def sent(engine: Engine, workspace: Workspace, tmp_path: Path) -> dict[str, int]:
    """Two campaigns: 双11 delivered to everyone at SENT, 返场 to 张三 a day later."""
    open_shop(engine, workspace, tmp_path)
    first = add_campaign(engine, workspace, "双11")
    plan_with_tracking(engine, workspace, first)
    for phone in (ZHANG, LI, WANG, ZHAO):
        deliver(engine, message_of(engine, phone, first)["id"], at=SENT)
    second = add_campaign(engine, workspace, "返场")
    plan_with_tracking(engine, workspace, second)
    deliver(engine, message_of(engine, ZHANG, second)["id"], at=SENT + timedelta(hours=25))
    return {"双11": first, "返场": second}


def click(engine: Engine, phone: str, campaign_id: int, at: datetime, agent: str = PHONE) -> None:
    message = message_of(engine, phone, campaign_id)
    with engine.connect() as conn:
        code = conn.execute(
            select(links.c.code).where(links.c.message_id == message["id"])
        ).scalar_one()
    recorder = ClickRecorder(engine, interval=3600)
    link = LinkResolver(engine).load(code)
    assert link is not None
    recorder.observe(link, method="GET", user_agent=agent, ip="10.0.0.9", now=at)
    recorder.close()


def coupon_of(engine: Engine, phone: str, campaign_id: int) -> str:
    message = message_of(engine, phone, campaign_id)
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(coupons.c.code).where(coupons.c.message_id == message["id"])
            ).scalar_one()
        )


def purchases(engine: Engine, workspace: Workspace, tmp_path: Path, rows: list[list[str]]) -> None:
    path = tmp_path / "orders.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "事件类型", "时间", "金额", "订单号", "优惠券"])
        writer.writerows(rows)
    report = import_events(
        engine, workspace=workspace, path=path, columns={}, rejects_path=None, now=NOW
    ).to_json()
    assert report["rejected"] == 0, report


def at(delta: timedelta) -> str:
    return (SENT + delta).isoformat()


def credited(engine: Engine) -> dict[str, tuple[str, int, int]]:
    """order → (source, message id, amount in fen)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                conversions.c.order_id,
                conversions.c.source,
                conversions.c.message_id,
                conversions.c.amount_fen,
            )
        ).all()
    return {order: (source, message, amount) for order, source, message, amount in rows}


def test_purchases_go_to_the_last_click_else_the_last_delivery(
    engine: Engine, workspace: Workspace, sent: dict[str, int], tmp_path: Path
) -> None:
    click(engine, ZHANG, sent["双11"], SENT + timedelta(hours=2))
    # A preview fetch of 李四's link is not a click: his purchase goes by delivery.
    click(
        engine, LI, sent["双11"], SENT + timedelta(hours=2), agent="TelegramBot (like TwitterBot)"
    )
    zhao_coupon = coupon_of(engine, ZHAO, sent["双11"])
    purchases(
        engine,
        workspace,
        tmp_path,
        [
            [ZHANG, "purchase", at(timedelta(days=2)), "100.00", "A1", ""],
            [LI, "purchase", at(timedelta(hours=10)), "58.50", "B1", ""],
            [WANG, "purchase", at(timedelta(days=3)), "30", "C1", ""],
            [ZHAO, "purchase", at(timedelta(days=4)), "200", "D1", zhao_coupon.lower()],
            [ZHANG, "purchase", at(timedelta(days=2, hours=1)), "100.00", "A1", "X"],
        ],
    )
    summary = attribute_purchases(engine, workspace_id=workspace.id, now=NOW)
    assert summary.examined == 5
    assert dict(summary.credited) == {"click": 1, "delivery": 1, "coupon": 1}
    assert summary.already_credited == 1
    first = {p: message_of(engine, p, sent["双11"])["id"] for p in (ZHANG, LI, ZHAO)}
    assert credited(engine) == {
        "A1": ("click", first[ZHANG], 10_000),
        "B1": ("delivery", first[LI], 5_850),
        "D1": ("coupon", first[ZHAO], 20_000),
    }
    # The coupon is now used; the shop's redemption call for the same order agrees.
    again = redeem_coupon(
        engine,
        workspace_id=workspace.id,
        code=zhao_coupon,
        order_id="D1",
        amount_fen=20_000,
        now=NOW,
    )
    assert again.credited is False and again.order_id == "D1"
    with pytest.raises(CouponAlreadyRedeemed, match="D1"):
        redeem_coupon(
            engine,
            workspace_id=workspace.id,
            code=zhao_coupon,
            order_id="E9",
            amount_fen=1,
            now=NOW,
        )
    assert attribute_purchases(engine, workspace_id=workspace.id, now=NOW).examined == 0


def test_attribution_windows_are_the_workspaces(
    engine: Engine, workspace: Workspace, sent: dict[str, int], tmp_path: Path
) -> None:
    update_tracking_settings(
        engine,
        workspace_id=workspace.id,
        click_window=timedelta(days=1),
        delivery_window=timedelta(hours=2),
        now=NOW,
    )
    click(engine, ZHANG, sent["双11"], SENT + timedelta(hours=2))
    purchases(
        engine,
        workspace,
        tmp_path,
        [
            # The click is 24.5 h old, past the 1-day window; 返场 was delivered 1.5 h before.
            [ZHANG, "purchase", at(timedelta(hours=26, minutes=30)), "10", "A2", ""],
            # Delivered 3 h before: past the 2-hour window.
            [LI, "purchase", at(timedelta(hours=3)), "10", "B2", ""],
        ],
    )
    attribute_purchases(engine, workspace_id=workspace.id, now=NOW)
    assert credited(engine) == {
        "A2": ("delivery", message_of(engine, ZHANG, sent["返场"])["id"], 1_000)
    }


def test_redeeming_a_coupon_credits_its_message_once(
    engine: Engine, workspace: Workspace, sent: dict[str, int], tmp_path: Path
) -> None:
    code = coupon_of(engine, WANG, sent["双11"])
    typed = f"{code[:4].lower()}-{code[4:]}"
    redemption = redeem_coupon(
        engine, workspace_id=workspace.id, code=typed, order_id=" W1 ", amount_fen=9_900, now=NOW
    )
    assert (redemption.code, redemption.order_id, redemption.credited) == (code, "W1", True)
    assert redemption.campaign_id == sent["双11"]
    assert credited(engine) == {
        "W1": ("coupon", message_of(engine, WANG, sent["双11"])["id"], 9_900)
    }
    # The purchase event of the same order, imported later, is not credited again.
    purchases(
        engine, workspace, tmp_path, [[WANG, "purchase", at(timedelta(hours=1)), "99", "W1", ""]]
    )
    summary = attribute_purchases(engine, workspace_id=workspace.id, now=NOW)
    assert (dict(summary.credited), summary.already_credited) == ({}, 1)
    assert len(credited(engine)) == 1


def test_an_order_credited_by_its_event_is_not_credited_again_by_a_coupon(
    engine: Engine, workspace: Workspace, sent: dict[str, int], tmp_path: Path
) -> None:
    purchases(
        engine, workspace, tmp_path, [[LI, "purchase", at(timedelta(hours=1)), "5", "L1", ""]]
    )
    attribute_purchases(engine, workspace_id=workspace.id, now=NOW)
    code = coupon_of(engine, LI, sent["双11"])
    redemption = redeem_coupon(
        engine, workspace_id=workspace.id, code=code, order_id="L1", amount_fen=500, now=NOW
    )
    assert redemption.credited is False
    assert credited(engine)["L1"][0] == "delivery"


def test_bad_redemptions_change_nothing(
    engine: Engine, workspace: Workspace, sent: dict[str, int]
) -> None:
    code = coupon_of(engine, WANG, sent["双11"])
    with pytest.raises(CouponNotFound):
        redeem_coupon(
            engine, workspace_id=workspace.id, code="ZZZZ2222", order_id="X", amount_fen=1, now=NOW
        )
    with pytest.raises(InvalidInput):
        redeem_coupon(
            engine, workspace_id=workspace.id, code=code, order_id="  ", amount_fen=1, now=NOW
        )
    with pytest.raises(InvalidInput):
        redeem_coupon(
            engine, workspace_id=workspace.id, code=code, order_id="X", amount_fen=-1, now=NOW
        )
    assert credited(engine) == {}


def test_generated_coupons_are_unique_and_listed(
    engine: Engine, workspace: Workspace, sent: dict[str, int]
) -> None:
    codes = generate_coupons(engine, workspace_id=workspace.id, campaign="双11", count=500, now=NOW)
    assert len(set(codes)) == 500
    with pytest.raises(CampaignNotFound):
        generate_coupons(engine, workspace_id=workspace.id, campaign="无此活动", count=1, now=NOW)
    with pytest.raises(InvalidInput):
        generate_coupons(engine, workspace_id=workspace.id, campaign="双11", count=0, now=NOW)
    # A code handed out in store has no message to credit, but is marked used.
    redemption = redeem_coupon(
        engine, workspace_id=workspace.id, code=codes[0], order_id="S1", amount_fen=100, now=NOW
    )
    assert redemption.credited is False and redemption.message_id is None
    listed = list(campaign_coupons(engine, workspace_id=workspace.id, campaign="双11"))
    assert len(listed) == 504
    assert sum(1 for row in listed if row["phone"] is not None) == 4
    used = [row for row in listed if row["redeemed_at"] is not None]
    assert [(row["code"], row["order_id"]) for row in used] == [(codes[0], "S1")]


def test_a_periodic_pass_attributes_every_workspace(
    engine: Engine, workspace: Workspace, sent: dict[str, int], tmp_path: Path
) -> None:
    purchases(
        engine, workspace, tmp_path, [[LI, "purchase", at(timedelta(hours=2)), "8", "P1", ""]]
    )
    summaries = attribute_all(engine, now=NOW)
    assert list(summaries) == [workspace.id]
    assert dict(summaries[workspace.id].credited) == {"delivery": 1}
    assert attribute_all(engine, now=NOW) == {}
