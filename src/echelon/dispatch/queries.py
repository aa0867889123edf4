"""SQL of the dispatcher: channel leases, claiming due messages, writing outcomes.

Claiming is one SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL (any number of workers
claim side by side, none twice) and a plain SELECT inside SQLite's BEGIN IMMEDIATE
(the single writer). Claimed rows become ``submitting`` and are committed before any
network call, so a crash leaves them ``submitting``; whoever takes the channel over
next settles them as ``unknown`` — never resent blindly (DESIGN, invariant 1).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from echelon.db.lists import one_of, update_rows
from echelon.db.outbox import campaigns, channel_leases, channels, messages, receipts
from echelon.dispatch.routing import Route


@dataclass(frozen=True, slots=True)
class ChannelRow:
    id: int
    workspace_id: int
    name: str
    config: dict[str, Any]
    route: Route


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due message as the dispatcher needs it."""

    id: int
    workspace_id: int
    contact_id: int
    phone: str
    kind: str
    text: str
    text_hash: str
    due_at: datetime
    expires_at: datetime | None
    channel_id: int | None
    attempts: int
    campaign_id: int | None
    reply_id: int | None
    carrier: str | None


def enabled_channels(conn: Connection) -> list[ChannelRow]:
    enabled = select(channels).where(channels.c.enabled.is_(True)).order_by(channels.c.id)
    rows = conn.execute(enabled)
    return [
        ChannelRow(
            id=row.id,
            workspace_id=row.workspace_id,
            name=row.name,
            config=dict(row.config),
            route=Route(
                channel_id=row.id,
                workspace_id=row.workspace_id,
                carriers=frozenset(row.carriers),
                weight=row.weight,
                priority=row.priority,
            ),
        )
        for row in rows
    ]


def hold_leases(
    conn: Connection,
    *,
    holder: str,
    wanted: Sequence[ChannelRow],
    now: datetime,
    ttl: timedelta,
) -> tuple[set[int], set[int]]:
    """Renew this holder's leases on ``wanted`` channels and take free or expired ones;
    release the holder's leases on channels no longer wanted. Returns (held, taken):
    every channel held now, and those taken over in this call."""
    lease = channel_leases.c
    wanted_ids = {c.id for c in wanted}
    conn.execute(
        delete(channel_leases).where(
            lease.holder == holder, lease.channel_id.not_in(wanted_ids or {0})
        )
    )
    current = {
        row.channel_id: row
        for row in conn.execute(select(channel_leases).where(lease.channel_id.in_(wanted_ids)))
    }
    held: set[int] = set()
    taken: set[int] = set()
    for channel in wanted:
        row = current.get(channel.id)
        if row is None:
            inserted = _insert_new(
                conn,
                {
                    "channel_id": channel.id,
                    "workspace_id": channel.workspace_id,
                    "holder": holder,
                    "acquired_at": now,
                    "expires_at": now + ttl,
                },
            )
            if inserted:
                held.add(channel.id)
                taken.add(channel.id)
            continue
        mine = row.holder == holder
        if not mine and row.expires_at > now:
            continue
        updated = conn.execute(
            update(channel_leases)
            .where(
                lease.channel_id == channel.id,
                or_(lease.holder == holder, lease.expires_at <= now),
            )
            .values(
                holder=holder,
                expires_at=now + ttl,
                acquired_at=row.acquired_at if mine else now,
            )
        ).rowcount
        if updated:
            held.add(channel.id)
            if not mine:
                taken.add(channel.id)
    return held, taken


def _insert_new(conn: Connection, values: dict[str, Any]) -> int:
    """Insert the lease unless another worker just did (no error either way)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(channel_leases)
    return conn.execute(statement.values(values).on_conflict_do_nothing()).rowcount


def release_leases(conn: Connection, *, holder: str) -> None:
    conn.execute(delete(channel_leases).where(channel_leases.c.holder == holder))


def settle_abandoned(conn: Connection, *, channel_ids: Collection[int], now: datetime) -> int:
    """Messages a previous holder left ``submitting`` on these channels become
    ``unknown``: they may have reached the SMSC, so they are never sent again blindly;
    a receipt that still arrives reconciles them."""
    if not channel_ids:
        return 0
    return conn.execute(
        update(messages)
        .where(messages.c.status == "submitting", messages.c.channel_id.in_(channel_ids))
        .values(
            status="unknown",
            error_code="worker_lost",
            error_detail="发送进程中断：提交结果未知，不会自动重发",
            updated_at=now,
        )
    ).rowcount


def channels_with_unknown(conn: Connection, channel_ids: Collection[int]) -> set[int]:
    """Which of these channels have ``unknown`` messages a receipt could still settle."""
    if not channel_ids:
        return set()
    m = messages.c
    return set(
        conn.execute(
            select(m.channel_id)
            .where(m.channel_id.in_(channel_ids), m.provider_id.is_(None), m.status == "unknown")
            .distinct()
        ).scalars()
    )


_CLAIMED = tuple(f.name for f in fields(Claimed))


def claim_due(
    conn: Connection,
    *,
    workspace_ids: Collection[int],
    now: datetime,
    limit: int,
    skip_campaigns: Collection[int] = (),
) -> list[Claimed]:
    """Lock up to ``limit`` due queued messages of these workspaces, oldest due first."""
    m = messages.c
    query = (
        select(*(m[name] for name in _CLAIMED))
        .where(m.status == "queued", m.due_at <= now, m.workspace_id.in_(workspace_ids))
        .order_by(m.due_at, m.id)
        .limit(limit)
    )
    if skip_campaigns:
        query = query.where(or_(m.campaign_id.is_(None), m.campaign_id.not_in(skip_campaigns)))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=messages, skip_locked=True)
    return [Claimed(*row) for row in conn.execute(query)]  # columns in field order


def write_messages(conn: Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Batched per-message updates: every dict carries ``_id`` and the same keys."""
    rows = [{("id" if k == "_id" else k): v for k, v in change.items()} for change in changes]
    update_rows(conn, messages, rows)


def mark_submitting(
    conn: Connection, *, channel_id: int, message_ids: Sequence[int], now: datetime
) -> None:
    """One statement per channel: the claimed messages become ``submitting`` on it."""
    conn.execute(
        update(messages)
        .where(one_of(conn, messages.c.id, message_ids))
        .values(
            status="submitting",
            channel_id=channel_id,
            attempts=messages.c.attempts + 1,
            updated_at=now,
        )
    )


def complete_campaigns(conn: Connection, *, now: datetime) -> int:
    """Running campaigns with nothing left to send become ``completed`` — not one whose
    A/B test still has its winner to send to the rest."""
    m = messages.c
    pending = exists().where(
        m.campaign_id == campaigns.c.id, m.status.in_(("planned", "queued", "submitting"))
    )
    return conn.execute(
        update(campaigns)
        .where(campaigns.c.status == "running", campaigns.c.rollout_due_at.is_(None), ~pending)
        .values(status="completed", finished_at=now)
    ).rowcount


def outstanding(
    conn: Connection, *, workspace_ids: Collection[int], now: datetime
) -> dict[str, int]:
    """How much is left: due queued, submitting, and submitted awaiting a receipt."""
    m = messages.c
    rows = conn.execute(
        select(m.status, func.count())
        .where(
            m.workspace_id.in_(workspace_ids),
            or_(
                and_(m.status == "queued", m.due_at <= now),
                m.status.in_(("submitting", "submitted")),
            ),
        )
        .group_by(m.status)
    )
    return {status: int(n) for status, n in rows}


def link_receipts(
    conn: Connection, *, channel_id: int, linked: Mapping[str, int]
) -> list[tuple[int, int, str, str | None, datetime]]:
    """Tie the channel's stored, unlinked receipts to their messages (``linked``:
    provider id → message id); (receipt id, message id, status, error code, received
    at) of each receipt tied, in arrival order. Both statements go by index: the
    receipts by (channel, provider id), then the update by receipt id."""
    r = receipts.c
    # Linked ones are passed over here, not in SQL: offered ``message_id IS NULL``,
    # SQLite read every unlinked receipt by that index instead.
    found = [
        (int(receipt_id), linked[provider_id], str(status), code, at)
        for receipt_id, provider_id, status, code, at, message_id in conn.execute(
            select(r.id, r.provider_id, r.status, r.error_code, r.received_at, r.message_id)
            .where(r.channel_id == channel_id, one_of(conn, r.provider_id, list(linked)))
            .order_by(r.id)
        )
        if message_id is None
    ]
    update_rows(conn, receipts, [{"id": row[0], "message_id": row[1]} for row in found])
    return found
