"""The webhook worker: claims due deliveries, posts them with httpx, records the outcome.

A claim is a lease (``next_attempt_at`` moves ``LEASE`` ahead), so a worker that dies
mid-post leaves its deliveries to be retried, and several workers never post the same
one at once (``FOR UPDATE SKIP LOCKED`` on PostgreSQL). A 2xx answer delivers; any
other answer, a timeout or a refused connection is retried after ``BACKOFF`` —
10 s, 30 s, 2 min … 6 h — and after the last the delivery is marked failed. Posts run
concurrently with a short timeout: a dead endpoint delays only its own deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import Engine, select, update

from echelon.analytics.webhook_fanout import fan_out
from echelon.analytics.webhooks import sign
from echelon.db.tracking import webhook_deliveries, webhooks

log = logging.getLogger(__name__)

BACKOFF: Final = tuple(
    timedelta(seconds=s) for s in (10, 30, 120, 600, 1_800, 3_600, 3 * 3_600, 6 * 3_600)
)
MAX_ATTEMPTS: Final = len(BACKOFF) + 1
LEASE: Final = timedelta(seconds=60)
TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
USER_AGENT: Final = "echelon-webhooks/1"


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    url: str
    secret: str
    event: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    attempts: int
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class Round:
    """What one pass of the worker did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def claim_due(
    engine: Engine, *, now: datetime, limit: int = 100, delivery_id: int | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` deliveries due now (or the one ``delivery_id``)."""
    d = webhook_deliveries.c
    query = (
        select(
            d.id, webhooks.c.url, webhooks.c.secret, d.event, d.payload, d.attempts, d.created_at
        )
        .join_from(webhook_deliveries, webhooks, webhooks.c.id == d.webhook_id)
        .where(d.status == "pending", webhooks.c.enabled.is_(True))
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
        .with_for_update(of=webhook_deliveries, skip_locked=True)
    )
    query = (
        query.where(d.id == delivery_id) if delivery_id else query.where(d.next_attempt_at <= now)
    )
    with engine.begin() as conn:
        rows = conn.execute(query).all()
        if rows:
            conn.execute(
                update(webhook_deliveries)
                .where(d.id.in_([row.id for row in rows]))
                .values(attempts=d.attempts + 1, next_attempt_at=now + LEASE)
            )
    return [
        Claimed(
            row.id, row.url, row.secret, row.event, row.payload, row.attempts + 1, row.created_at
        )
        for row in rows
    ]


def body_of(claimed: Claimed) -> bytes:
    """The JSON body: the same bytes on every attempt."""
    document = {
        "id": f"whd_{claimed.id}",
        "event": claimed.event,
        "created_at": claimed.created_at.isoformat(),
        "data": claimed.payload,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


async def post(client: httpx.AsyncClient, claimed: Claimed, *, now: datetime) -> Outcome:
    body = body_of(claimed)
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "x-echelon-event": claimed.event,
        "x-echelon-delivery": f"whd_{claimed.id}",
        "x-echelon-timestamp": str(timestamp),
        "x-echelon-signature": sign(claimed.secret, timestamp, body),
    }
    try:
        answer = await client.post(claimed.url, content=body, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return Outcome(claimed.id, claimed.attempts, None, f"{type(exc).__name__}: {exc}"[:500])
    error = None if answer.is_success else f"HTTP {answer.status_code}: {answer.text[:200]}"
    return Outcome(claimed.id, claimed.attempts, answer.status_code, error)


def record_outcomes(engine: Engine, outcomes: list[Outcome], *, now: datetime) -> Round:
    done = Round()
    d = webhook_deliveries.c
    with engine.begin() as conn:
        for outcome in outcomes:
            values: dict[str, Any] = {
                "last_status_code": outcome.status_code,
                "last_error": outcome.error,
            }
            if outcome.ok:
                values |= {"status": "delivered", "delivered_at": now}
                done.delivered += 1
            elif outcome.attempts >= MAX_ATTEMPTS:
                values |= {"status": "failed"}
                done.failed += 1
            else:
                values |= {"next_attempt_at": now + BACKOFF[outcome.attempts - 1]}
                done.retrying += 1
            conn.execute(
                update(webhook_deliveries).where(d.id == outcome.delivery_id).values(**values)
            )
    return done


async def deliver_due(
    engine: Engine,
    client: httpx.AsyncClient,
    *,
    now: datetime | None = None,
    limit: int = 100,
    delivery_id: int | None = None,
) -> Round:
    """Claim and post what is due (or the one ``delivery_id``); what became of it."""
    moment = now or datetime.now(UTC)
    claimed = await asyncio.to_thread(
        claim_due, engine, now=moment, limit=limit, delivery_id=delivery_id
    )
    if not claimed:
        return Round()
    outcomes = await asyncio.gather(*(post(client, c, now=moment) for c in claimed))
    answered = now or datetime.now(UTC)
    return await asyncio.to_thread(record_outcomes, engine, list(outcomes), now=answered)


async def run_webhook_worker(
    engine: Engine,
    *,
    stop: asyncio.Event,
    interval: float = 1.0,
    client: httpx.AsyncClient | None = None,
) -> None:
    """Fan out and deliver until ``stop`` is set; a failing pass is logged and retried.
    ``client`` (kept open) serves tests and shared pools; else one is made and closed."""
    if client is None:
        async with httpx.AsyncClient(follow_redirects=False) as own:
            await run_webhook_worker(engine, stop=stop, interval=interval, client=own)
        return
    while not stop.is_set():
        busy = False
        try:
            await asyncio.to_thread(fan_out, engine, now=datetime.now(UTC))
            done = await deliver_due(engine, client)
            busy = done.delivered + done.retrying + done.failed > 0
        except Exception:
            log.exception("webhook pass failed")
        if not busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
