"""A/B tests after the test window: choose the winner and send it to the rest.

When a test-then-roll-out campaign's window has passed (``campaigns.rollout_due_at``),
its variants are measured from the outbox and judged (``winner.judge_experiment``);
the decision — the winner, or "no significant difference" and the fallback — is stored
with the experiment, and the rest of the audience is planned with the chosen variant
through the same gate and outbox as any plan, page by page, resumable. The worker does
this on its own (``run_rollouts``); ``decide_campaign`` does it on demand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from echelon.analytics.reports import campaign_report
from echelon.campaigns import queries
from echelon.campaigns.models import STATUS_LABELS, Campaign
from echelon.campaigns.planner import Progress
from echelon.campaigns.service import (
    CampaignStateError,
    campaign_in,
    campaign_planner,
    plan_pages,
    set_status,
)
from echelon.campaigns.winner import (
    decision_json,
    holdout_lift,
    judge_experiment,
    outcome_json,
    variant_outcomes,
)
from echelon.db.outbox import campaigns
from echelon.errors import InvalidInput
from echelon.runtime.periodic import every

log = logging.getLogger(__name__)
POLL_SECONDS = 30.0


def decide_campaign(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    now: datetime,
    early: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Choose the campaign's winner and plan the rest with it. Before the window has
    passed only with ``early`` (the data may then be thin: the rule says so itself)."""
    with engine.begin() as conn:
        campaign = campaign_in(conn, workspace_id, name)
        test = campaign.experiment
        if test is None or test.mode != "test":
            raise InvalidInput(f"活动「{name}」没有「先测试后推广」的 A/B 测试")
        due = campaign.rollout_due_at
        if test.decision is None:
            if campaign.status not in ("running", "completed"):
                raise CampaignStateError(
                    f"活动「{name}」{STATUS_LABELS[campaign.status]}，不能选出胜出版本"
                )
            if due is None or (due > now and not early):
                raise CampaignStateError(
                    f"活动「{name}」的测试窗口尚未结束"
                    + ("" if due is None else f"（{due.isoformat()}）")
                    + "；如需提前决定请加 --early"
                )
            campaign = _decide(conn, workspace_id, campaign, now)
        # Decided before and its roll-out planned: nothing to do but report (once this
        # transaction is over: on SQLite another connection would wait for it).
        settled = test.decision is not None and campaign.status != "planning"
        if not settled:
            planner = campaign_planner(conn, workspace_id, campaign, now, samples=0, write=True)
            cursor = queries.planning_cursor(conn, campaign.id)[1] or 0
    if settled:
        return experiment_report(engine, workspace_id=workspace_id, name=name, now=now)

    def running(conn: Connection) -> None:
        set_status(conn, campaign.id, "running")
        conn.execute(
            update(campaigns).where(campaigns.c.id == campaign.id).values(rollout_due_at=None)
        )

    summary = plan_pages(engine, campaign, planner, cursor, now, progress, finish=running)
    report = experiment_report(engine, workspace_id=workspace_id, name=name, now=now)
    report["rollout"] = {
        "planned": summary.queued,
        "blocked": dict(summary.blocked),
        "not_in_rest": summary.skipped,
    }
    return report


def _decide(conn: Connection, workspace_id: int, campaign: Campaign, now: datetime) -> Campaign:
    """Store the decision and set the campaign planning the rest (its cursor at 0)."""
    test = campaign.experiment
    assert test is not None
    decision = judge_experiment(variant_outcomes(conn, campaign.id, test), test)
    decided = test.model_copy(update={"decision": decision_json(decision, test, now)})
    conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign.id)
        .values(
            experiment=decided.model_dump(mode="json"),
            status="planning",
            planned_through=0,
            finished_at=None,
        )
    )
    log.info("campaign %s: %s", campaign.name, decided.decision and decided.decision["reason"])
    return campaign_in(conn, workspace_id, campaign.name)


def experiment_report(
    engine: Engine, *, workspace_id: int, name: str, now: datetime
) -> dict[str, Any]:
    """Per variant the counts and rates with 95% intervals, the tested metric, the
    decision and why (or where the test stands), and the lift over the holdout."""
    with engine.connect() as conn:
        campaign = campaign_in(conn, workspace_id, name)
        test = campaign.experiment
        if test is None:
            raise InvalidInput(f"活动「{name}」没有 A/B 测试")
        due = campaign.rollout_due_at
        outcomes = variant_outcomes(conn, campaign.id, test)
        since = campaign.started_at or campaign.send_at or now
        lift = holdout_lift(conn, campaign.id, since=since, until=now)
    # Latency per variant from the campaign report (its histogram): a channel test
    # compares delivery, latency and conversion.
    by_variant = campaign_report(
        engine, workspace_id=workspace_id, campaign=name, by="variant", now=now
    ).groups
    latency = {g.key: (g.metrics.latency_p50_s, g.metrics.latency_p95_s) for g in by_variant}
    variants = []
    for outcome in outcomes:
        shown = outcome_json(outcome, test.metric)
        shown["latency_p50_s"], shown["latency_p95_s"] = latency.get(outcome.name, (None, None))
        variants.append(shown)
    interim = None
    if test.decision is None and any(o.delivered for o in outcomes):
        interim = decision_json(judge_experiment(outcomes, test), test, now)
    return {
        "campaign": campaign.name,
        "mode": test.mode,
        "metric": test.metric,
        "confidence": test.confidence,
        "holdout_percent": test.holdout,
        "test_share_percent": test.test_share if test.mode == "test" else 100.0,
        "window_hours": test.window_hours if test.mode == "test" else None,
        "decide_at": None if due is None else due.isoformat(),
        "variants": variants,
        "decision": test.decision,
        "interim": interim,
        "holdout": lift,
    }


def choose_due_winners(engine: Engine, now: datetime) -> list[str]:
    """Decide every campaign whose test window has passed (and finish any roll-out a
    stopped worker left part-planned); the names of those handled."""
    with engine.connect() as conn:
        due = conn.execute(
            select(campaigns.c.workspace_id, campaigns.c.name).where(
                campaigns.c.rollout_due_at <= now,
                campaigns.c.status.in_(("running", "completed", "planning")),
            )
        ).all()
    handled = []
    for workspace_id, name in due:
        try:
            decide_campaign(engine, workspace_id=workspace_id, name=name, now=now)
        except CampaignStateError as exc:
            log.warning("campaign %s: %s", name, exc.message)
            continue
        handled.append(name)
    return handled


async def run_rollouts(
    engine: Engine,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Choose winners as their windows pass, until ``stop`` is set."""
    await every(
        poll_seconds, lambda: choose_due_winners(engine, clock()), stop, what="choosing A/B winners"
    )
