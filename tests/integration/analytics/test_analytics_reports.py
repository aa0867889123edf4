"""Campaign reports, thresholds, alerts, dashboard and channel health on both databases.

Every expected figure is worked out by hand from ``analytics_support.SPECS``.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from analytics_support import (
    MORNING,
    NOW,
    Outbox,
    Spec,
    add_click,
    add_contact,
    add_message,
    fill_outbox,
    make_campaign,
)
from sqlalchemy import Engine, update

from echelon.analytics.models import Status
from echelon.analytics.queries import Scope, tally
from echelon.analytics.reports import (
    CampaignNotFound,
    campaign_report,
    channel_health,
    dashboard,
    evaluate_alerts,
    get_thresholds,
    list_alerts,
    record_alerts,
    set_min_sample,
    set_threshold,
)
from echelon.analytics.rules import latency_bucket
from echelon.db.outbox import campaigns, messages
from echelon.errors import InvalidInput
from echelon.workspaces.service import Workspace, create_workspace


@pytest.fixture
def outbox(engine: Engine, workspace: Workspace) -> Outbox:
    return fill_outbox(engine, workspace.id)


def test_a_campaign_report_counts_every_outcome(engine: Engine, outbox: Outbox) -> None:
    report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11")
    m = report.total
    assert (report.campaign, report.by, report.groups) == ("双11", None, [])
    assert (m.planned, m.waiting, m.blocked, m.cancelled) == (12, 1, 2, 0)
    assert m.blocked_by_reason == {"opt_out": 1, "no_consent": 1}
    assert (m.sent, m.delivered, m.failed) == (8, 5, 4)
    assert list(m.failed_by_reason.items()) == [
        ("MK:0001", 1),
        ("REJ", 1),
        ("no_route", 1),
        ("unknown", 1),
    ]
    assert m.delivery_rate == pytest.approx(5 / 8)
    # Latencies 0.55, 1.05, 1.25, 2.55, 30.5 s: half within 1.3 s, 95% within 31 s.
    assert (m.latency_p50_s, m.latency_p95_s) == (1.3, 31.0)
    assert (m.clicks, m.click_rate) == (2, pytest.approx(0.4))
    assert (m.conversions, m.conversion_rate) == (2, pytest.approx(0.4))
    assert (m.revenue, m.cost) == (Decimal("150.50"), Decimal("0.48"))
    assert m.roi == Decimal("313.54")
    assert (m.opt_outs, m.opt_out_rate) == (1, pytest.approx(0.2))
    assert (m.complaints, m.complaint_rate) == (1, pytest.approx(0.2))
    # By id as well as by name.
    by_id = campaign_report(
        engine, workspace_id=outbox.workspace_id, campaign=str(outbox.campaign_id)
    )
    assert by_id.total == m


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        # label → (planned, sent, delivered, clicks, conversions)
        ("variant", {"A": (6, 4, 3, 1, 1), "B": (6, 4, 2, 1, 1)}),
        (
            "channel",
            {
                "移动一号": (6, 4, 3, 1, 1),
                "联通二号": (4, 4, 2, 1, 1),
                "未分配通道": (2, 0, 0, 0, 0),
            },
        ),
        ("carrier", {"china_mobile": (6, 6, 5, 2, 2), "china_unicom": (6, 2, 0, 0, 0)}),
        ("province", {"广东": (6, 6, 5, 2, 2), "北京": (6, 2, 0, 0, 0)}),
        # A went at 10:00 Shanghai, B at 20:30; B's blocked ones were due at 10:00.
        ("hour", {"10时": (8, 4, 3, 1, 1), "20时": (4, 4, 2, 1, 1)}),
    ],
)
def test_reports_group_by_what_was_asked(
    engine: Engine,
    outbox: Outbox,
    by: str,
    expected: dict[str, tuple[int, int, int, int, int]],
) -> None:
    report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11", by=by)
    found = {
        g.label: (
            g.metrics.planned,
            g.metrics.sent,
            g.metrics.delivered,
            g.metrics.clicks,
            g.metrics.conversions,
        )
        for g in report.groups
    }
    assert found == expected
    assert sum(g.metrics.planned for g in report.groups) == report.total.planned


def test_unknown_campaigns_and_groupings_are_clear_errors(engine: Engine, outbox: Outbox) -> None:
    with pytest.raises(CampaignNotFound):
        campaign_report(engine, workspace_id=outbox.workspace_id, campaign="无此活动")
    with pytest.raises(InvalidInput, match="variant"):
        campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11", by="city")


def test_another_workspace_sees_nothing(engine: Engine, outbox: Outbox) -> None:
    other, _ = create_workspace(engine, slug="other", name="别家")
    with pytest.raises(CampaignNotFound):
        campaign_report(engine, workspace_id=other.id, campaign=str(outbox.campaign_id))
    board = dashboard(engine, workspace_id=other.id, now=NOW)
    assert board.last_30_days.planned == 0


def test_rates_are_judged_against_the_workspaces_thresholds(engine: Engine, outbox: Outbox) -> None:
    report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11")
    # Five delivered messages are too few to judge by the default sample of 100.
    assert {j.status for j in report.judgements} == {Status.INSUFFICIENT}
    set_min_sample(engine, workspace_id=outbox.workspace_id, messages=5, now=NOW)
    report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11")
    assert {j.metric: j.status for j in report.judgements} == {
        "delivery_rate": Status.FAIL,
        "click_rate": Status.EXCELLENT,
        "conversion_rate": Status.EXCELLENT,
        "complaint_rate": Status.FAIL,
        "opt_out_rate": Status.FAIL,
    }
    set_threshold(
        engine,
        workspace_id=outbox.workspace_id,
        metric="click_rate",
        passing=0.3,
        excellent=0.5,
        now=NOW,
    )
    report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11")
    assert {j.metric: j.status for j in report.judgements}["click_rate"] is Status.PASS
    thresholds = get_thresholds(engine, workspace_id=outbox.workspace_id)
    assert thresholds.min_sample == 5
    assert (thresholds.levels["click_rate"].passing, thresholds.levels["click_rate"].excellent) == (
        0.3,
        0.5,
    )
    assert thresholds.levels["delivery_rate"].passing == 0.98


@pytest.mark.parametrize(
    "levels",
    [
        {"metric": "click_rate", "passing": 1.5},
        {"metric": "click_rate", "passing": 0.4, "excellent": 0.3},
        {"metric": "complaint_rate", "passing": 0.001, "excellent": 0.002},
        {"metric": "open_rate", "passing": 0.1},
    ],
)
def test_bad_thresholds_change_nothing(
    engine: Engine, workspace: Workspace, levels: dict[str, object]
) -> None:
    before = get_thresholds(engine, workspace_id=workspace.id)
    with pytest.raises(InvalidInput):
        set_threshold(engine, workspace_id=workspace.id, now=NOW, **levels)  # type: ignore[arg-type]
    assert get_thresholds(engine, workspace_id=workspace.id) == before


def test_breaches_raise_alerts_that_resolve_when_the_breach_ends(
    engine: Engine, outbox: Outbox
) -> None:
    set_min_sample(engine, workspace_id=outbox.workspace_id, messages=5, now=NOW)
    report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11")
    raised = record_alerts(engine, workspace_id=outbox.workspace_id, report=report, now=NOW)
    assert {a.metric: a.advice for a in raised} == {
        "delivery_rate": "送达率低于 95%：检查号码质量，清理空号、停机和错号",
        "complaint_rate": "投诉率超标：暂停发送，检查营销同意来源和内容",
        "opt_out_rate": "退订率超过 2%：检查发送频率和内容相关性",
    }
    assert {a.metric: (a.value, a.threshold) for a in raised}["delivery_rate"] == (0.625, 0.95)
    # Recording the same report again raises nothing new.
    later = NOW + timedelta(hours=1)
    assert (
        len(record_alerts(engine, workspace_id=outbox.workspace_id, report=report, now=later)) == 3
    )
    set_threshold(
        engine, workspace_id=outbox.workspace_id, metric="opt_out_rate", alert=0.5, now=NOW
    )
    report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11")
    still = record_alerts(engine, workspace_id=outbox.workspace_id, report=report, now=later)
    assert {a.metric for a in still} == {"delivery_rate", "complaint_rate"}
    every = list_alerts(engine, workspace_id=outbox.workspace_id)
    assert len(every) == 3
    resolved = [a for a in every if a.resolved_at is not None]
    assert [(a.metric, a.resolved_at) for a in resolved] == [("opt_out_rate", later)]
    assert {a.last_seen_at for a in every if a.resolved_at is None} == {later}
    assert len(list_alerts(engine, workspace_id=outbox.workspace_id, open_only=True)) == 2


def test_the_dashboard_trends_today_7_and_30_days(engine: Engine, workspace: Workspace) -> None:
    outbox = Outbox(workspace.id, make_campaign(engine, workspace.id))
    delivered = Spec("A", None, "delivered", latency=2.05)
    with engine.begin() as conn:
        contact = add_contact(conn, workspace.id, "+8613800000001", "china_mobile", "广东")
        # Due today, 3 days ago, 10 days ago, 40 days ago (outside every window).
        for days in (0, 0, 3, 10, 40):
            moment = MORNING - timedelta(days=days)
            add_message(conn, outbox, contact, delivered, at=moment, due=moment)
    board = dashboard(engine, workspace_id=workspace.id, now=NOW)
    assert (board.today.planned, board.last_7_days.planned, board.last_30_days.planned) == (2, 3, 4)
    assert board.today.delivery_rate == 1.0 and board.today.latency_p50_s == 2.1
    assert len(board.daily) == 30 and board.daily[-1][0] == date(2026, 11, 11)
    by_day = {day: m.planned for day, m in board.daily if m.planned}
    assert by_day == {date(2026, 11, 11): 2, date(2026, 11, 8): 1, date(2026, 11, 1): 1}


def test_channel_health_is_per_channel_per_hour(engine: Engine, outbox: Outbox) -> None:
    rows = channel_health(engine, workspace_id=outbox.workspace_id, now=NOW)
    found = {(r.channel, r.hour.hour): (r.sent, r.delivered, r.latency_p95_s) for r in rows}
    assert found == {
        ("移动一号", 10): (3, 3, 31.0),
        ("移动一号", 20): (1, 0, None),
        ("联通二号", 10): (1, 0, None),
        ("联通二号", 20): (3, 2, 1.1),
    }
    assert all(r.hour.utcoffset() == timedelta(hours=8) for r in rows)
    assert (
        channel_health(engine, workspace_id=outbox.workspace_id, now=NOW + timedelta(days=2)) == []
    )


LATENCIES = [0.0, 0.05, 0.35, 9.95, 10.5, 42.5, 599.5, 600.5, 3_630.0, -3.0]


def test_the_database_buckets_latency_as_the_rule_does(
    engine: Engine, workspace: Workspace
) -> None:
    outbox = Outbox(workspace.id, make_campaign(engine, workspace.id))
    with engine.begin() as conn:
        contact = add_contact(conn, workspace.id, "+8613800000001", "china_mobile", "广东")
        for seconds in LATENCIES:
            spec = Spec("A", None, "delivered", latency=seconds or None)
            message = add_message(conn, outbox, contact, spec, at=MORNING)
            conn.execute(
                update(messages)
                .where(messages.c.id == message)
                .values(done_at=MORNING + timedelta(seconds=seconds))
            )
    with engine.connect() as conn:
        (found,) = tally(conn, Scope(workspace.id, campaign_id=outbox.campaign_id)).values()
    assert found.latency == Counter(latency_bucket(s) for s in LATENCIES)


def test_running_campaigns_are_checked_for_alerts(engine: Engine, outbox: Outbox) -> None:
    set_min_sample(engine, workspace_id=outbox.workspace_id, messages=5, now=NOW)
    assert evaluate_alerts(engine, now=NOW) == []  # a draft is not checked
    with engine.begin() as conn:
        conn.execute(
            update(campaigns).where(campaigns.c.id == outbox.campaign_id).values(status="running")
        )
    raised = evaluate_alerts(engine, now=NOW)
    assert {a.metric for a in raised} == {"delivery_rate", "complaint_rate", "opt_out_rate"}
    assert {a.campaign for a in raised} == {"双11"}


def test_the_outbox_scan_is_kept_while_fresh_and_for_good_once_settled(
    engine: Engine, outbox: Outbox
) -> None:
    def delivered(at: datetime) -> int:
        report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11", now=at)
        return report.total.delivered

    def set_status(index: int, status: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                update(messages)
                .where(messages.c.id == outbox.message_ids[index])
                .values(status=status)
            )

    assert delivered(NOW) == 5
    set_status(3, "delivered")  # a late receipt
    assert delivered(NOW + timedelta(seconds=30)) == 5  # the scan of a minute ago
    assert delivered(NOW + timedelta(minutes=2)) == 6
    # Once nothing is waiting or in flight, the scan stands for good.
    set_status(9, "cancelled")
    assert delivered(NOW + timedelta(minutes=4)) == 6
    set_status(0, "undelivered")
    assert delivered(NOW + timedelta(days=1)) == 6
    # What followed the messages is kept a minute only, settled or not.
    with engine.begin() as conn:
        add_click(conn, outbox, 1, human=True, at=NOW)
    later = NOW + timedelta(days=1)
    report = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11", now=later)
    assert report.total.clicks == 2
    report = campaign_report(
        engine,
        workspace_id=outbox.workspace_id,
        campaign="双11",
        now=later + timedelta(minutes=2),
    )
    assert report.total.clicks == 3
