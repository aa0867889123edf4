"""An A/B test's outcome: each variant measured from the outbox, the winner chosen by
``experiments.decide`` once the test window has passed, and the lift over the holdout.

Per variant: ``sent`` (submitted to a channel), ``delivered``, ``clicked`` (messages with
at least one human click), ``converted`` (messages credited with an order) and revenue.
Rates divide by delivered messages, as the campaign report does, except the delivery
rate (by sent). The holdout is compared on what the campaign cannot influence in its
favour: the share of contacts who bought anything (a ``purchase`` event) within the
window after the send, messaged contacts against held-out ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, distinct, func, select

from echelon.campaigns.experiments import Arm, Decision, Metric, decide, interval, wilson
from echelon.campaigns.models import Experiment
from echelon.compliance.rules import BlockReason
from echelon.db.outbox import messages
from echelon.db.tables import events
from echelon.db.tracking import clicks, conversions

SENT_STATUSES = ("submitted", "delivered", "undelivered", "expired", "rejected", "unknown")
HOLDOUT = BlockReason.HOLDOUT.value
# How long after the send a purchase counts for the holdout comparison.
LIFT_WINDOW = timedelta(days=5)


@dataclass(frozen=True, slots=True)
class VariantOutcome:
    name: str
    planned: int
    sent: int
    delivered: int
    clicked: int
    converted: int
    revenue_fen: int
    revenue_sq_fen: float

    def arm(self, metric: Metric) -> Arm:
        if metric == "delivery_rate":
            return Arm(self.name, self.sent, self.delivered)
        if metric == "click_rate":
            return Arm(self.name, self.delivered, self.clicked)
        if metric == "conversion_rate":
            return Arm(self.name, self.delivered, self.converted)
        yuan = self.revenue_fen / 100
        return Arm(self.name, self.delivered, total=yuan, total_sq=self.revenue_sq_fen / 10_000)


def variant_outcomes(
    conn: Connection, campaign_id: int, experiment: Experiment
) -> list[VariantOutcome]:
    """Each variant's counts, in the experiment's order (zeros for one not yet sent)."""
    m = messages.c
    clicked = (
        select(clicks.c.message_id)
        .where(clicks.c.campaign_id == campaign_id, clicks.c.human.is_(True))
        .distinct()
        .subquery()
    )
    credited = (
        select(
            conversions.c.message_id,
            func.sum(conversions.c.amount_fen).label("amount"),
        )
        .where(conversions.c.campaign_id == campaign_id)
        .group_by(conversions.c.message_id)
        .subquery()
    )
    delivered = m.status == "delivered"
    rows = conn.execute(
        select(
            m.variant,
            func.count().filter(m.status != "blocked").label("planned"),
            func.count().filter(m.status.in_(SENT_STATUSES)).label("sent"),
            func.count().filter(delivered).label("delivered"),
            func.count(clicked.c.message_id).filter(delivered).label("clicked"),
            func.count(credited.c.message_id).filter(delivered).label("converted"),
            func.coalesce(func.sum(case((delivered, credited.c.amount), else_=0)), 0).label(
                "revenue"
            ),
            func.coalesce(
                func.sum(case((delivered, credited.c.amount * credited.c.amount), else_=0)), 0
            ).label("revenue_sq"),
        )
        .select_from(
            messages.outerjoin(clicked, clicked.c.message_id == m.id).outerjoin(
                credited, credited.c.message_id == m.id
            )
        )
        .where(m.campaign_id == campaign_id, m.variant.is_not(None))
        .group_by(m.variant)
    ).all()
    found = {row.variant: row for row in rows}
    outcomes = []
    for variant in experiment.variants:
        row = found.get(variant.name)
        outcomes.append(
            VariantOutcome(
                variant.name,
                *(
                    (0, 0, 0, 0, 0, 0, 0.0)
                    if row is None
                    else (
                        row.planned,
                        row.sent,
                        row.delivered,
                        row.clicked,
                        row.converted,
                        int(row.revenue),
                        float(row.revenue_sq),
                    )
                ),
            )
        )
    return outcomes


def judge_experiment(outcomes: list[VariantOutcome], experiment: Experiment) -> Decision:
    """The decision rule on what was measured (``experiments.decide``)."""
    return decide(
        [outcome.arm(experiment.metric) for outcome in outcomes],
        experiment.metric,
        confidence=experiment.confidence,
        fallback=experiment.fallback_index,
    )


def decision_json(decision: Decision, experiment: Experiment, now: datetime) -> dict[str, Any]:
    names = [v.name for v in experiment.variants]
    return {
        "decided_at": now.isoformat(),
        "winner": None if decision.winner is None else names[decision.winner],
        "chosen": names[decision.chosen],
        "significant": decision.winner is not None,
        "p_value": round(decision.p_value, 6),
        "confidence": decision.confidence,
        "probability_best": dict(
            zip(names, (round(p, 4) for p in decision.probability_best), strict=True)
        ),
        "reason": decision.reason,
    }


def holdout_lift(
    conn: Connection, campaign_id: int, *, since: datetime, until: datetime
) -> dict[str, Any] | None:
    """Buyers among held-out contacts against buyers among messaged ones, between the
    send and ``until`` (at most ``LIFT_WINDOW`` after it); None without a holdout."""
    m, e = messages.c, events.c
    until = min(until, since + LIFT_WINDOW)
    bought = (
        select(e.contact_id)
        .where(e.type == "purchase", e.occurred_at >= since, e.occurred_at < until)
        .distinct()
        .subquery()
    )
    held = and_(m.status == "blocked", m.block_reason == HOLDOUT)
    messaged = m.status.in_(SENT_STATUSES)
    row = conn.execute(
        select(
            func.count(distinct(case((held, m.contact_id)))).label("held"),
            func.count(
                distinct(case((and_(held, bought.c.contact_id.is_not(None)), m.contact_id)))
            ).label("held_bought"),
            func.count(distinct(case((messaged, m.contact_id)))).label("messaged"),
            func.count(
                distinct(case((and_(messaged, bought.c.contact_id.is_not(None)), m.contact_id)))
            ).label("messaged_bought"),
        )
        .select_from(messages.outerjoin(bought, bought.c.contact_id == m.contact_id))
        .where(m.campaign_id == campaign_id)
    ).one()
    if not row.held:
        return None
    held_rate = row.held_bought / row.held
    messaged_rate = row.messaged_bought / row.messaged if row.messaged else 0.0
    held_ci, messaged_ci = (
        wilson(row.held_bought, row.held),
        wilson(row.messaged_bought, row.messaged),
    )
    return {
        "holdout": {"contacts": row.held, "bought": row.held_bought, "rate": held_rate,
                    "ci95": [held_ci.low, held_ci.high]},
        "messaged": {"contacts": row.messaged, "bought": row.messaged_bought,
                     "rate": messaged_rate, "ci95": [messaged_ci.low, messaged_ci.high]},
        "lift": messaged_rate - held_rate,
        "relative_lift": None if held_rate == 0 else messaged_rate / held_rate - 1,
        "window": [since.isoformat(), until.isoformat()],
    }  # fmt: skip


def outcome_json(outcome: VariantOutcome, metric: Metric) -> dict[str, Any]:
    """A variant's counts, the rates with 95% intervals, and the tested metric."""
    arm = outcome.arm(metric)
    ci = interval(arm, metric)
    rates = {}
    for name, successes, trials in (
        ("delivery_rate", outcome.delivered, outcome.sent),
        ("click_rate", outcome.clicked, outcome.delivered),
        ("conversion_rate", outcome.converted, outcome.delivered),
    ):
        low_high = wilson(successes, trials)
        rates[name] = {
            "value": successes / trials if trials else None,
            "ci95": [low_high.low, low_high.high],
        }
    return {
        "variant": outcome.name,
        "planned": outcome.planned,
        "sent": outcome.sent,
        "delivered": outcome.delivered,
        "clicked": outcome.clicked,
        "converted": outcome.converted,
        "revenue_yuan": outcome.revenue_fen / 100,
        **rates,
        "revenue_per_message": arm.mean("revenue_per_message")
        if metric == "revenue_per_message"
        else (outcome.revenue_fen / 100 / outcome.delivered if outcome.delivered else None),
        "metric": {"name": metric, "value": arm.mean(metric), "ci95": [ci.low, ci.high]},
    }
