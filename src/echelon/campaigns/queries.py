"""SQL of campaigns: audience pages, the outbox rows a plan writes, and counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, select, update

from echelon.campaigns.models import Audience
from echelon.db.bulk import copy_rows
from echelon.db.outbox import messages
from echelon.db.tables import consents, contact_list_members, contact_lists, contact_tags, contacts

PLANNED_COLUMNS = (
    "workspace_id",
    "contact_id",
    "phone",
    "campaign_id",
    "kind",
    "text",
    "text_hash",
    "parts",
    "cost_e4",
    "status",
    "block_reason",
    "due_at",
    "expires_at",
    "created_at",
    "updated_at",
)


def _audience_filter(workspace_id: int, audience: Audience) -> ColumnElement[bool]:
    # "+ 0" keeps the planners off the (workspace_id, phone) index: pages walk the primary
    # key, and SQLite otherwise read the whole workspace and sorted it for every page.
    mine = (contacts.c.workspace_id + 0) == workspace_id
    if audience.kind == "consenting":
        return and_(
            mine,
            exists().where(
                consents.c.contact_id == contacts.c.id,
                consents.c.purpose == "marketing",
                consents.c.revoked_at.is_(None),
            ),
        )
    if audience.kind == "tag":
        return and_(
            mine,
            exists().where(
                contact_tags.c.contact_id == contacts.c.id, contact_tags.c.tag == audience.tag
            ),
        )
    if audience.kind == "list":
        return and_(
            mine,
            exists().where(
                contact_list_members.c.contact_id == contacts.c.id,
                contact_list_members.c.list_id == contact_lists.c.id,
                contact_lists.c.workspace_id == workspace_id,
                contact_lists.c.name == audience.list,
            ),
        )
    return mine


def audience_size(conn: Connection, workspace_id: int, audience: Audience) -> int:
    query = select(func.count()).where(_audience_filter(workspace_id, audience))
    return int(conn.execute(query).scalar_one())


def audience_page(
    conn: Connection, workspace_id: int, audience: Audience, *, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """The next ``limit`` contacts by id after ``after_id``, each with its tags: keyset
    pages, so a million-contact audience is never held in memory at once."""
    rows = [
        dict(row._mapping)
        for row in conn.execute(
            select(contacts)
            .where(_audience_filter(workspace_id, audience), contacts.c.id > after_id)
            .order_by(contacts.c.id)
            .limit(limit)
        )
    ]
    if rows:
        tags: dict[int, list[str]] = {}
        for contact_id, tag in conn.execute(
            select(contact_tags.c.contact_id, contact_tags.c.tag).where(
                contact_tags.c.contact_id.between(rows[0]["id"], rows[-1]["id"]),
                contact_tags.c.workspace_id == workspace_id,
            )
        ):
            tags.setdefault(contact_id, []).append(tag)
        for row in rows:
            row["tags"] = tags.get(row["id"], [])
    return rows


def parts_this_month(conn: Connection, workspace_id: int, start: datetime) -> int:
    """Parts of the workspace's messages due since ``start`` that will be billed."""
    query = select(func.coalesce(func.sum(messages.c.parts), 0)).where(
        messages.c.workspace_id == workspace_id,
        messages.c.due_at >= start,
        messages.c.status.not_in(("blocked", "cancelled", "failed")),
    )
    return int(conn.execute(query).scalar_one())


def write_planned(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    copy_rows(conn, messages, PLANNED_COLUMNS, rows)


def move_messages(
    conn: Connection, campaign_id: int, *, from_statuses: Sequence[str], to: str, now: datetime
) -> int:
    statement = (
        update(messages)
        .where(messages.c.campaign_id == campaign_id, messages.c.status.in_(from_statuses))
        .values(status=to, updated_at=now)
    )
    return conn.execute(statement).rowcount


def status_counts(conn: Connection, campaign_id: int) -> dict[str, Any]:
    m = messages.c
    by_status = {
        status: n
        for status, n in conn.execute(
            select(m.status, func.count()).where(m.campaign_id == campaign_id).group_by(m.status)
        )
    }
    blocked = {
        reason: n
        for reason, n in conn.execute(
            select(m.block_reason, func.count())
            .where(m.campaign_id == campaign_id, m.status == "blocked")
            .group_by(m.block_reason)
        )
    }
    failed = {
        code or "unknown": n
        for code, n in conn.execute(
            select(m.error_code, func.count())
            .where(
                m.campaign_id == campaign_id,
                m.status.in_(("failed", "undelivered", "rejected", "expired")),
            )
            .group_by(m.error_code)
        )
    }
    parts, cost = conn.execute(
        select(func.coalesce(func.sum(m.parts), 0), func.coalesce(func.sum(m.cost_e4), 0)).where(
            m.campaign_id == campaign_id, m.status.not_in(("blocked", "cancelled"))
        )
    ).one()
    return {
        "by_status": by_status,
        "blocked": blocked,
        "failed": failed,
        "parts": int(parts),
        "cost_e4": int(cost),
    }
