"""The analytics worker: purchases attributed and running campaigns checked for alerts,
every few minutes, without anyone asking for a report.

Attribution goes first, so the alerts judge conversions credited in the same pass.
A pass that fails is logged and the next one tries again; sending never waits on it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine

from echelon.analytics.reports import Alert, evaluate_alerts
from echelon.runtime.periodic import every
from echelon.tracking.conversions import AttributionSummary, attribute_all

INTERVAL: Final = 300.0
"""Seconds between passes: purchases are credited, and breaches raised, within this."""


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass did: purchases examined per workspace, and the alerts open after."""

    attributed: dict[int, AttributionSummary] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)


def analytics_pass(engine: Engine, *, now: datetime) -> Pass:
    """Attribute every new purchase event, then record alerts of running campaigns."""
    attributed = attribute_all(engine, now=now)
    return Pass(attributed, evaluate_alerts(engine, now=now))


async def run_analytics_worker(
    engine: Engine, *, stop: asyncio.Event, interval: float = INTERVAL
) -> None:
    """``analytics_pass`` every ``interval`` seconds until ``stop`` is set."""
    await every(
        interval,
        lambda: analytics_pass(engine, now=datetime.now(UTC)),
        stop,
        what="analytics pass",
    )
