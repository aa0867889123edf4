"""A/B tests through the real planner and outbox, on both databases: variants and the
holdout assigned by the stable hash, each variant's template, link and channel; the
test share first, the winner chosen after the window from what was measured, and the
rest planned with it — or, with no significant difference, with the control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from echelon.audience.records import record_events, upsert_contacts
from echelon.campaigns.experiments import Split
from echelon.campaigns.rollout import choose_due_winners, decide_campaign, experiment_report
from echelon.campaigns.service import (
    CampaignStateError,
    campaign_status,
    create_campaign,
    preview_campaign,
    start_campaign,
)
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.outbox import campaigns, channels, messages
from echelon.db.tracking import clicks, links
from echelon.errors import InvalidInput
from echelon.workspaces.service import Workspace, update_settings

NOON = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SIZE = 2_000
PHONES = [f"139{i:08d}" for i in range(SIZE)]


def template(engine: Engine, workspace: Workspace, name: str, body: str) -> None:
    create_template(
        engine, workspace_id=workspace.id, name=name, kind="marketing", body=body,
        signature=None, actor="运营", now=NOON,
    )  # fmt: skip
    submit_template(engine, workspace_id=workspace.id, name=name, actor="运营", now=NOON)
    approve_template(engine, workspace_id=workspace.id, name=name, actor="合规", now=NOON)


def channel(engine: Engine, workspace: Workspace, name: str) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(channels)
                .values(
                    workspace_id=workspace.id, name=name, kind="smpp", config={},
                    carriers=["all"], created_at=NOON, updated_at=NOON,
                )
                .returning(channels.c.id)
            ).scalar_one()
        )  # fmt: skip


@pytest.fixture
def shop(engine: Engine, workspace: Workspace) -> Workspace:
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    upsert_contacts(
        engine,
        workspace_id=workspace.id,
        records=[{"phone": p, "name": f"会员{i}", "consent": True} for i, p in enumerate(PHONES)],
        consent_source="checkout_checkbox",
        list_name=None,
        now=NOON - timedelta(days=30),
    )
    template(
        engine,
        workspace,
        "甲",
        "{{ name }}，双11预售开启，低至5折！{{ link('https://shop.example/a') }}",
    )
    template(
        engine,
        workspace,
        "乙",
        "{{ name }}，您购物车中的商品已降价 {{ link('https://shop.example/a') }}",
    )
    return workspace


def campaign(engine: Engine, workspace: Workspace, experiment: dict[str, Any]) -> None:
    create_campaign(
        engine, workspace_id=workspace.id, name="双11测试", template="甲",
        audience={"kind": "consenting"}, send_at=NOON, ends_at=None,
        throttle_per_second=None, budget_yuan=None, now=NOON, experiment=experiment,
    )  # fmt: skip


def planned(engine: Engine) -> list[Any]:
    m = messages.c
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(
                    m.id, m.contact_id, m.variant, m.status, m.block_reason, m.text,
                    m.channel_id, m.due_at,
                ).order_by(m.id)
            )
        )  # fmt: skip


def campaign_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(campaigns.c.id)).scalar_one())


TEST_THEN_ROLL_OUT = {
    "variants": [{"name": "A"}, {"name": "B", "template": "乙", "link": "https://shop.example/b"}],
    "mode": "test",
    "test_share": 40,
    "holdout": 5,
    "window_hours": 4,
    "metric": "click_rate",
}


def deliver_and_click(engine: Engine, rates: dict[str, float]) -> None:
    """Every tested message delivered; the first ``rate`` of each variant's clicked."""
    with engine.begin() as conn:
        workspace_id, cid = conn.execute(select(campaigns.c.workspace_id, campaigns.c.id)).one()
        conn.execute(
            update(messages).where(messages.c.status == "queued").values(status="delivered")
        )
        rows = conn.execute(
            select(
                messages.c.id,
                messages.c.variant,
                links.c.id.label("link_id"),
                messages.c.contact_id,
            )
            .join(links, links.c.message_id == messages.c.id)
            .where(messages.c.status == "delivered")
            .order_by(messages.c.id)
        ).all()
        by_variant: dict[str, list[Any]] = {}
        for row in rows:
            by_variant.setdefault(row.variant, []).append(row)
        for variant, its in by_variant.items():
            for row in its[: round(len(its) * rates[variant])]:
                conn.execute(
                    insert(clicks).values(
                        workspace_id=workspace_id, link_id=row.link_id, message_id=row.id,
                        contact_id=row.contact_id, campaign_id=cid,
                        clicked_at=NOON + timedelta(hours=1), human=True,
                    )
                )  # fmt: skip


def test_a_test_share_goes_first_and_the_winner_to_the_rest(
    engine: Engine, shop: Workspace
) -> None:
    campaign(engine, shop, TEST_THEN_ROLL_OUT)
    started = start_campaign(engine, workspace_id=shop.id, name="双11测试", now=NOON)
    rows = planned(engine)
    cid = campaign_id(engine)
    split = Split((1.0, 1.0), holdout=5, test=40)
    # Each contact is where the stable hash puts them; the rest are not planned yet.
    expected = {c: split.assign(cid, c) for c in range(1, SIZE + 1)}
    held = [r for r in rows if r.block_reason == "holdout"]
    tested = [r for r in rows if r.variant is not None]
    assert len(rows) == len(held) + len(tested)
    assert {r.contact_id for r in held} == {c for c, g in expected.items() if g[0] == "holdout"}
    assert all(expected[r.contact_id] == ("test", "AB".index(r.variant)) for r in tested)
    assert started["planned"] == len(tested) and started["blocked"] == {"holdout": len(held)}
    assert 0.03 < len(held) / SIZE < 0.07 and 0.33 < len(tested) / SIZE < 0.43
    # Each variant its own template; B's short links go to B's landing page.
    assert all(("5折" in r.text) == (r.variant == "A") for r in tested)
    with engine.connect() as conn:
        targets = dict(
            conn.execute(
                select(messages.c.variant, links.c.target_url)
                .join(links, links.c.message_id == messages.c.id)
                .distinct()
            ).all()
        )
    assert targets == {"A": "https://shop.example/a", "B": "https://shop.example/b"}

    # Nothing is decided before the window ends, and the campaign is not "completed".
    deliver_and_click(engine, {"A": 0.10, "B": 0.30})
    assert choose_due_winners(engine, NOON + timedelta(hours=3)) == []
    with pytest.raises(CampaignStateError, match="窗口尚未结束"):
        decide_campaign(
            engine, workspace_id=shop.id, name="双11测试", now=NOON + timedelta(hours=1)
        )
    interim = experiment_report(engine, workspace_id=shop.id, name="双11测试", now=NOON)
    assert interim["decision"] is None and interim["interim"]["winner"] == "B"

    assert choose_due_winners(engine, NOON + timedelta(hours=5)) == ["双11测试"]
    after = planned(engine)
    rest = after[len(rows) :]
    assert {r.contact_id for r in rest} == {c for c, g in expected.items() if g[0] == "rollout"}
    assert {r.variant for r in rest} == {"B"} and all("降价" in r.text for r in rest)
    report = experiment_report(engine, workspace_id=shop.id, name="双11测试", now=NOON)
    decision = report["decision"]
    assert decision["winner"] == "B" and decision["significant"] and decision["p_value"] < 0.05
    a, b = report["variants"]
    assert b["click_rate"]["ci95"][0] > a["click_rate"]["ci95"][1]
    assert (
        campaign_status(engine, workspace_id=shop.id, name="双11测试")["campaign"]["status"]
        == "running"
    )
    # Deciding again changes nothing: the rest were planned once.
    assert choose_due_winners(engine, NOON + timedelta(hours=6)) == []
    assert len(planned(engine)) == len(after)


def test_without_a_significant_difference_the_control_goes_to_the_rest(
    engine: Engine, shop: Workspace
) -> None:
    campaign(engine, shop, TEST_THEN_ROLL_OUT)
    start_campaign(engine, workspace_id=shop.id, name="双11测试", now=NOON)
    deliver_and_click(engine, {"A": 0.20, "B": 0.21})
    report = decide_campaign(
        engine, workspace_id=shop.id, name="双11测试", now=NOON + timedelta(hours=4, seconds=1)
    )
    assert report["decision"]["winner"] is None and report["decision"]["chosen"] == "A"
    assert "无显著差异" in report["decision"]["reason"]
    rest = [r for r in planned(engine) if r.status == "queued"]
    assert rest and {r.variant for r in rest} == {"A"}


def test_a_pure_split_plans_everyone_with_their_variant_and_channel(
    engine: Engine, shop: Workspace
) -> None:
    mobile, unicom = channel(engine, shop, "移动主通道"), channel(engine, shop, "备用通道")
    experiment = {
        "variants": [
            {
                "name": "早",
                "send_at": "2026-11-11T10:00:00+08:00",
                "channel": "移动主通道",
                "weight": 3,
            },
            {
                "name": "晚",
                "send_at": "2026-11-11T19:00:00+08:00",
                "channel": "备用通道",
                "weight": 1,
            },
        ],
        "holdout": 10,
    }
    campaign(engine, shop, experiment)
    preview = preview_campaign(engine, workspace_id=shop.id, name="双11测试", samples=0, now=NOON)
    start_campaign(engine, workspace_id=shop.id, name="双11测试", now=NOON)
    rows = planned(engine)
    sent = [r for r in rows if r.status == "queued"]
    assert preview["planned"] == len(sent) and preview["blocked"] == {
        "holdout": len(rows) - len(sent)
    }
    counts = {v: sum(r.variant == v for r in sent) for v in ("早", "晚")}
    assert sum(counts.values()) == len(sent) and 2.4 < counts["早"] / counts["晚"] < 3.7
    assert all(r.channel_id == {"早": mobile, "晚": unicom}[r.variant] for r in sent)
    # 10:00 has passed at noon: now; 19:00 is kept.
    assert {
        r.due_at.replace(tzinfo=UTC) if r.due_at.tzinfo is None else r.due_at
        for r in sent
        if r.variant == "晚"
    } == {datetime(2026, 11, 11, 11, 0, tzinfo=UTC)}
    with pytest.raises(InvalidInput, match="没有「先测试后推广」"):
        decide_campaign(engine, workspace_id=shop.id, name="双11测试", now=NOON)
    # A channel test compares delivery and latency too: 早's channel answers in 2 s,
    # 晚's in 20 s, and 晚 loses a tenth of its messages.
    with engine.begin() as conn:
        for variant, seconds in (("早", 2), ("晚", 20)):
            conn.execute(
                update(messages)
                .where(messages.c.variant == variant, messages.c.status == "queued")
                .values(
                    status="delivered",
                    submitted_at=NOON,
                    done_at=NOON + timedelta(seconds=seconds),
                )
            )
        lost = [r.id for r in sent if r.variant == "晚"][::10]
        conn.execute(update(messages).where(messages.c.id.in_(lost)).values(status="undelivered"))
    early, late = experiment_report(
        engine, workspace_id=shop.id, name="双11测试", now=NOON + timedelta(hours=9)
    )["variants"]
    assert early["latency_p50_s"] < 5 < 15 < late["latency_p50_s"]
    assert early["delivery_rate"]["value"] == 1.0
    assert late["delivery_rate"]["value"] == pytest.approx(1 - len(lost) / counts["晚"])


def test_the_holdout_shows_the_lift(engine: Engine, shop: Workspace) -> None:
    campaign(engine, shop, {**TEST_THEN_ROLL_OUT, "holdout": 20})
    start_campaign(engine, workspace_id=shop.id, name="双11测试", now=NOON)
    rows = planned(engine)
    held = [r.contact_id for r in rows if r.block_reason == "holdout"]
    messaged = [r.contact_id for r in rows if r.status == "queued"]
    deliver_and_click(engine, {"A": 0.1, "B": 0.1})
    buyers = held[: len(held) // 20] + messaged[: len(messaged) // 5]  # 5% against 20%
    record_events(
        engine,
        workspace_id=shop.id,
        records=[
            {"phone": PHONES[c - 1], "type": "purchase", "amount": 99,
             "occurred_at": (NOON + timedelta(hours=2)).isoformat()}
            for c in buyers
        ],
        now=NOON + timedelta(hours=2),
    )  # fmt: skip
    lift = experiment_report(
        engine, workspace_id=shop.id, name="双11测试", now=NOON + timedelta(days=1)
    )["holdout"]
    assert lift["holdout"]["contacts"] == len(held)
    assert lift["holdout"]["rate"] == pytest.approx(len(held) // 20 / len(held))
    assert lift["messaged"]["rate"] == pytest.approx(len(messaged) // 5 / len(messaged))
    assert lift["lift"] > 0.1


@pytest.mark.parametrize(
    ("experiment", "problem"),
    [
        ({"variants": [{"name": "A"}]}, "variants"),
        ({"variants": [{"name": "A"}, {"name": "A"}]}, "不能重复"),
        ({"variants": [{"name": "A"}, {"name": "B"}], "holdout": 60}, "holdout"),
        ({"variants": [{"name": "A"}, {"name": "B", "template": "无此模板"}]}, "无此模板"),
        ({"variants": [{"name": "A"}, {"name": "B", "channel": "无此通道"}]}, "无此通道"),
        ({"variants": [{"name": "A"}, {"name": "B"}], "fallback": "C"}, "fallback"),
        ({"variants": [{"name": "A"}, {"name": "B"}], "metric": "opens"}, "metric"),
    ],
)
def test_a_bad_experiment_is_refused_with_the_reason(
    engine: Engine, shop: Workspace, experiment: dict[str, Any], problem: str
) -> None:
    with pytest.raises(Exception, match=problem) as caught:
        campaign(engine, shop, experiment)
    assert caught.value.__class__.__name__ in ("InvalidInput", "TemplateNotFound")
    with engine.connect() as conn:
        assert conn.execute(select(campaigns.c.id)).first() is None
