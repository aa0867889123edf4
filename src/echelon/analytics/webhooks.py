"""Outgoing webhooks: endpoints per workspace, a test event, and the delivery log.

Sending never calls a webhook, nor writes for one: ``webhook_fanout`` queues a
delivery per event and endpoint from what the pipeline recorded, and
``webhook_worker`` posts them.

Every delivery is signed: ``X-Echelon-Signature: sha256=HMAC_SHA256(secret,
f"{X-Echelon-Timestamp}.{body}")`` in hex, so a receiver checks the sender and the
freshness; ``X-Echelon-Delivery`` is stable across retries, for deduplication.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Engine, case, func, insert, select

from echelon.analytics.webhook_fanout import latest_id
from echelon.db.tracking import webhook_deliveries, webhooks
from echelon.errors import InvalidInput, NotFound

EVENTS: Final = ("receipt", "reply", "opt_out", "click", "conversion")
EVENT_LABELS: Final = {
    "receipt": "回执",
    "reply": "回复",
    "opt_out": "退订",
    "click": "点击",
    "conversion": "转化",
    "test": "测试",
}


class WebhookNotFound(NotFound):
    code = "webhook_not_found"

    def __init__(self, reference: object) -> None:
        super().__init__(f"Webhook {reference} 不存在：用 echelon webhooks list 查看")


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime
    pending: int = 0
    delivered: int = 0
    failed: int = 0
    last_error: str | None = None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Echelon-Signature`` value of a body sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def _check_url(url: str) -> str:
    url = url.strip()
    host = url.split("://", 1)[1].split("/", 1)[0] if "://" in url else ""
    if not url.startswith(("https://", "http://")) or not host or len(url) > 500:
        raise InvalidInput(f"Webhook 地址 {url!r} 无效：应以 https:// 开头（测试时可用 http://）")
    return url


def _check_events(events: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(e.strip() for e in events if e.strip())) or list(EVENTS)
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise InvalidInput(f"未知事件 {', '.join(unknown)}，可用：{', '.join(EVENTS)}")
    return chosen


def add_webhook(
    engine: Engine, *, workspace_id: int, url: str, events: Sequence[str] = (), now: datetime
) -> tuple[Webhook, str]:
    """A new endpoint for ``events`` (all if none), and its signing secret — shown once.
    It receives what happens from now on, not the history."""
    address = _check_url(url)
    chosen = _check_events(events)
    secret = secrets.token_hex(24)
    with engine.begin() as conn:
        exists = conn.execute(
            select(webhooks.c.id).where(
                webhooks.c.workspace_id == workspace_id, webhooks.c.url == address
            )
        ).one_or_none()
        if exists is not None:
            raise InvalidInput(f"Webhook {address} 已存在（ID {exists.id}）")
        cursors = {event: latest_id(conn, event) for event in EVENTS}
        conn.execute(
            insert(webhooks).values(
                workspace_id=workspace_id,
                url=address,
                secret=secret,
                events=chosen,
                enabled=True,
                cursors=cursors,
                created_at=now,
                updated_at=now,
            )
        )
    created = next(w for w in list_webhooks(engine, workspace_id=workspace_id) if w.url == address)
    return created, secret


def remove_webhook(engine: Engine, *, workspace_id: int, webhook_id: int) -> None:
    """Delete the endpoint and its delivery log."""
    with engine.begin() as conn:
        gone = conn.execute(
            webhooks.delete().where(
                webhooks.c.workspace_id == workspace_id, webhooks.c.id == webhook_id
            )
        ).rowcount
    if not gone:
        raise WebhookNotFound(webhook_id)


def list_webhooks(engine: Engine, *, workspace_id: int) -> list[Webhook]:
    """The workspace's endpoints with their delivery counts and last error."""
    d = webhook_deliveries.c
    counts = (
        select(
            d.webhook_id,
            func.sum(case((d.status == "pending", 1), else_=0)).label("pending"),
            func.sum(case((d.status == "delivered", 1), else_=0)).label("delivered"),
            func.sum(case((d.status == "failed", 1), else_=0)).label("failed"),
        )
        .where(d.workspace_id == workspace_id)
        .group_by(d.webhook_id)
        .subquery()
    )
    last_error = (
        select(d.last_error)
        .where(d.webhook_id == webhooks.c.id, d.last_error.is_not(None))
        .order_by(d.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(webhooks, counts.c.pending, counts.c.delivered, counts.c.failed, last_error)
        .select_from(webhooks.outerjoin(counts, counts.c.webhook_id == webhooks.c.id))
        .where(webhooks.c.workspace_id == workspace_id)
        .order_by(webhooks.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Webhook(
            id=row.id,
            url=row.url,
            events=list(row.events),
            enabled=row.enabled,
            created_at=row.created_at,
            pending=int(row.pending or 0),
            delivered=int(row.delivered or 0),
            failed=int(row.failed or 0),
            last_error=row[-1],
        )
        for row in rows
    ]


def enqueue_test(engine: Engine, *, workspace_id: int, webhook_id: int, now: datetime) -> int:
    """Queue a ``test`` event for the endpoint; the delivery's id."""
    with engine.begin() as conn:
        found = conn.execute(
            select(webhooks.c.id).where(
                webhooks.c.workspace_id == workspace_id, webhooks.c.id == webhook_id
            )
        ).one_or_none()
        if found is None:
            raise WebhookNotFound(webhook_id)
        return int(
            conn.execute(
                insert(webhook_deliveries)
                .values(
                    workspace_id=workspace_id,
                    webhook_id=webhook_id,
                    event="test",
                    source_id=None,
                    payload={"message": "echelon webhook 测试", "sent_at": now.isoformat()},
                    status="pending",
                    next_attempt_at=now,
                    created_at=now,
                )
                .returning(webhook_deliveries.c.id)
            ).scalar_one()
        )


def list_deliveries(
    engine: Engine, *, workspace_id: int, webhook_id: int | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The latest deliveries, newest first: the delivery log."""
    d = webhook_deliveries.c
    query = (
        select(
            d.id,
            d.webhook_id,
            d.event,
            d.status,
            d.attempts,
            d.last_status_code,
            d.last_error,
            d.created_at,
            d.next_attempt_at,
            d.delivered_at,
        )
        .where(d.workspace_id == workspace_id)
        .order_by(d.id.desc())
        .limit(limit)
    )
    if webhook_id is not None:
        query = query.where(d.webhook_id == webhook_id)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
