"""What runs beside the dispatcher, in ``echelon worker`` and in ``echelon serve``:
the journey runner, webhook deliveries, attribution and alerts, A/B winners chosen as
their windows pass, and housekeeping. Each runs until ``stop`` is set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine

from echelon.access.sending import purge_idempotency_keys
from echelon.analytics.periodic import run_analytics_worker
from echelon.analytics.webhook_worker import run_webhook_worker
from echelon.campaigns.rollout import run_rollouts
from echelon.journeys.runner import run_journeys
from echelon.runtime.periodic import every

log = logging.getLogger(__name__)
HOUSEKEEPING_INTERVAL: Final = 600.0


def companions(engine: Engine, stop: asyncio.Event) -> dict[str, Coroutine[Any, Any, Any]]:
    """The background work, by name, to run as tasks beside the dispatcher."""
    return {
        "journeys": run_journeys(engine, stop),
        "webhooks": run_webhook_worker(engine, stop=stop),
        "analytics": run_analytics_worker(engine, stop=stop),
        "rollouts": run_rollouts(engine, stop),
        "housekeeping": housekeeping(engine, stop),
    }


def supervised(name: str, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """``work`` as a task whose failure is logged, not lost."""
    task = asyncio.create_task(work, name=name)

    def report(done: asyncio.Task[Any]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("%s stopped", name, exc_info=done.exception())

    task.add_done_callback(report)
    return task


async def housekeeping(engine: Engine, stop: asyncio.Event) -> None:
    """Forget idempotency answers past their day, every few minutes."""
    await every(
        HOUSEKEEPING_INTERVAL,
        lambda: purge_idempotency_keys(engine, now=datetime.now(UTC)),
        stop,
        what="housekeeping",
    )
