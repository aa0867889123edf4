"""Webhook fan-out: what happened since each endpoint's cursors, queued as deliveries.

Sending never calls a webhook, nor writes for one: ``fan_out`` reads each source table
— receipts, replies, opt-outs, clicks, conversions — in id order past the endpoint's
cursor, and queues one delivery per event and endpoint, in one transaction per
endpoint. A source row is passed only once it is ``LAG`` old, so a row whose
transaction commits late is not skipped; a receipt not yet tied to its message waits
up to ``HOLD`` for it. Queuing is idempotent (one delivery per endpoint, event, row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Connection, Engine, Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from echelon.db.outbox import messages, receipts, replies
from echelon.db.tables import contacts, suppressions
from echelon.db.tracking import clicks, conversions, links, webhook_deliveries, webhooks

LAG: Final = timedelta(seconds=5)
HOLD: Final = timedelta(minutes=10)
BATCH: Final = 1_000


@dataclass(frozen=True, slots=True)
class _Source:
    """How one event kind is read: rows after a cursor, their time, and their payload."""

    query: Callable[[int, int], Select[Any]]
    time_of: str
    include: Callable[[Any], bool]
    payload: Callable[[Any], dict[str, Any]]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _clicks(workspace_id: int, after: int) -> Select[Any]:
    c = clicks.c
    return (
        select(
            c.id,
            c.human,
            c.clicked_at,
            c.message_id,
            c.campaign_id,
            contacts.c.phone,
            links.c.target_url,
        )
        .join_from(clicks, links, links.c.id == c.link_id)
        .join(contacts, contacts.c.id == c.contact_id)
        .where(c.workspace_id == workspace_id, c.id > after)
        .order_by(c.id)
        .limit(BATCH)
    )


def _receipts(workspace_id: int, after: int) -> Select[Any]:
    r = receipts.c
    return (
        select(
            r.id,
            r.received_at,
            r.message_id,
            r.status,
            r.error_code,
            r.done_at,
            r.channel_id,
            r.provider_id,
            messages.c.campaign_id,
            messages.c.phone,
        )
        .join_from(receipts, messages, messages.c.id == r.message_id, isouter=True)
        .where(r.workspace_id == workspace_id, r.id > after)
        .order_by(r.id)
        .limit(BATCH)
    )


def _replies(workspace_id: int, after: int) -> Select[Any]:
    r = replies.c
    return (
        select(r.id, r.received_at, r.phone, r.text, r.message_id, r.action, messages.c.campaign_id)
        .join_from(replies, messages, messages.c.id == r.message_id, isouter=True)
        .where(r.workspace_id == workspace_id, r.id > after)
        .order_by(r.id)
        .limit(BATCH)
    )


def _opt_outs(workspace_id: int, after: int) -> Select[Any]:
    s = suppressions.c
    return (
        select(s.id, s.created_at, s.phone, s.kind, s.source, s.reason)
        .where(s.workspace_id == workspace_id, s.id > after)
        .order_by(s.id)
        .limit(BATCH)
    )


def _conversions(workspace_id: int, after: int) -> Select[Any]:
    v = conversions.c
    return (
        select(
            v.id,
            v.created_at,
            v.order_id,
            v.message_id,
            v.campaign_id,
            v.source,
            v.amount_fen,
            v.occurred_at,
            contacts.c.phone,
        )
        .join_from(conversions, contacts, contacts.c.id == v.contact_id, isouter=True)
        .where(v.workspace_id == workspace_id, v.id > after)
        .order_by(v.id)
        .limit(BATCH)
    )


SOURCES: Final[dict[str, _Source]] = {
    "click": _Source(
        _clicks,
        "clicked_at",
        lambda row: bool(row.human),
        lambda row: {
            "message_id": row.message_id,
            "campaign_id": row.campaign_id,
            "phone": row.phone,
            "url": row.target_url,
            "clicked_at": _iso(row.clicked_at),
        },
    ),
    "receipt": _Source(
        _receipts,
        "received_at",
        lambda row: True,
        lambda row: {
            "message_id": row.message_id,
            "campaign_id": row.campaign_id,
            "phone": row.phone,
            "status": row.status,
            "error_code": row.error_code,
            "done_at": _iso(row.done_at),
            "channel_id": row.channel_id,
            "provider_id": row.provider_id,
        },
    ),
    "reply": _Source(
        _replies,
        "received_at",
        lambda row: True,
        lambda row: {
            "phone": row.phone,
            "text": row.text,
            "message_id": row.message_id,
            "campaign_id": row.campaign_id,
            "opt_out": row.action == "opt_out",
            "received_at": _iso(row.received_at),
        },
    ),
    "opt_out": _Source(
        _opt_outs,
        "created_at",
        lambda row: row.kind == "opt_out",
        lambda row: {
            "phone": row.phone,
            "source": row.source,
            "reason": row.reason,
            "at": _iso(row.created_at),
        },
    ),
    "conversion": _Source(
        _conversions,
        "created_at",
        lambda row: True,
        lambda row: {
            "order_id": row.order_id,
            "message_id": row.message_id,
            "campaign_id": row.campaign_id,
            "phone": row.phone,
            "source": row.source,
            "amount": str(Decimal(row.amount_fen) / 100),
            "occurred_at": _iso(row.occurred_at),
        },
    ),
}
_TABLES: Final = {
    "click": clicks,
    "receipt": receipts,
    "reply": replies,
    "opt_out": suppressions,
    "conversion": conversions,
}


def latest_id(conn: Connection, event: str) -> int:
    """The last row of ``event``'s source table: where a new endpoint's cursor starts."""
    table = _TABLES[event]
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())


def fan_out(engine: Engine, *, now: datetime) -> int:
    """Queue a delivery per endpoint for everything that happened since its cursors;
    how many were queued."""
    with engine.connect() as conn:
        endpoints = (
            conn.execute(
                select(webhooks.c.id).where(webhooks.c.enabled.is_(True)).order_by(webhooks.c.id)
            )
            .scalars()
            .all()
        )
    return sum(_fan_out_one(engine, webhook_id, now) for webhook_id in endpoints)


def _fan_out_one(engine: Engine, webhook_id: int, now: datetime) -> int:
    queued = 0
    with engine.begin() as conn:
        hook = conn.execute(
            select(webhooks).where(webhooks.c.id == webhook_id).with_for_update(skip_locked=True)
        ).one_or_none()
        if hook is None or not hook.enabled:
            return 0
        cursors = dict(hook.cursors)
        for event in hook.events:
            source = SOURCES[event]
            cursor = int(cursors.get(event, 0))
            rows = conn.execute(source.query(hook.workspace_id, cursor)).all()
            chosen = []
            for row in rows:
                at = getattr(row, source.time_of)
                if at > now - LAG:
                    break
                if event == "receipt" and row.message_id is None and at > now - HOLD:
                    break  # its submit response may still come and tie it to a message
                cursor = row.id
                if source.include(row):
                    chosen.append((row.id, source.payload(row)))
            queued += _queue(conn, hook.workspace_id, webhook_id, event, chosen, now)
            cursors[event] = cursor
        if cursors != hook.cursors:
            conn.execute(
                update(webhooks)
                .where(webhooks.c.id == webhook_id)
                .values(cursors=cursors, updated_at=now)
            )
    return queued


def _queue(
    conn: Connection,
    workspace_id: int,
    webhook_id: int,
    event: str,
    chosen: list[tuple[int, dict[str, Any]]],
    now: datetime,
) -> int:
    if not chosen:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(webhook_deliveries).on_conflict_do_nothing(
        index_elements=["webhook_id", "event", "source_id"]
    )
    done = conn.execute(
        statement,
        [
            {
                "workspace_id": workspace_id,
                "webhook_id": webhook_id,
                "event": event,
                "source_id": source_id,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for source_id, payload in chosen
        ],
    )
    return max(done.rowcount, 0)
