"""SQL of campaigns: audience pages, the outbox rows a plan writes, and counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Text,
    and_,
    cast,
    exists,
    func,
    literal,
    select,
    update,
)

from echelon.campaigns.models import Audience
from echelon.db.bulk import copy_rows
from echelon.db.outbox import campaigns, messages
from echelon.db.tables import consents, contact_list_members, contact_lists, contact_tags, contacts
from echelon.segments.queries import audience_clause

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
    "variant",
    "channel_id",
    "carrier",
    "province",
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
    if audience.kind == "segment":
        # A started campaign reads its snapshot; a preview, the segment evaluated live.
        members = audience_clause(workspace_id, snapshot=audience.snapshot, live=audience.live)
        return and_(mine, members)
    return mine


def audience_size(conn: Connection, workspace_id: int, audience: Audience) -> int:
    query = select(func.count()).where(_audience_filter(workspace_id, audience))
    return int(conn.execute(query).scalar_one())


class AudiencePage(NamedTuple):
    """Contacts as rows of the values asked for, and each one's tags if asked."""

    rows: Sequence[Sequence[Any]]
    tags: dict[int, list[str]]


def audience_page(
    conn: Connection,
    workspace_id: int,
    audience: Audience,
    *,
    after_id: int,
    limit: int,
    columns: Sequence[str],
    attribute_keys: Sequence[str] | None,
    with_tags: bool,
) -> AudiencePage:
    """The next ``limit`` contacts by id after ``after_id``: keyset pages, so a
    million-contact audience is never held in memory at once.

    A row holds ``columns`` (``id`` first), then each of ``attribute_keys`` as JSON
    text (None where the contact has no such attribute) — or, when that is None, all
    attributes as JSON text. Left as text, equal values compare equal undecoded."""
    selected: list[ColumnElement[Any]] = [contacts.c[name] for name in columns]
    if attribute_keys is None:
        selected.append(cast(contacts.c.attributes, Text))
    else:
        selected.extend(_attribute_json(conn, key) for key in attribute_keys)
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # A page is a walk along the primary key. PostgreSQL reckons few contacts pass
        # the filter ("+ 0" hides its statistics), so for the early pages it would
        # rather read the whole table and sort it: no sorting, for this query.
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
    rows = conn.execute(
        select(*selected)
        .where(_audience_filter(workspace_id, audience), contacts.c.id > after_id)
        .order_by(contacts.c.id)
        .limit(limit)
    ).all()
    if postgres:
        conn.exec_driver_sql("SET LOCAL enable_sort = DEFAULT")
    tags: dict[int, list[str]] = {}
    if rows and with_tags:
        first, last = rows[0][0], rows[-1][0]
        for contact_id, tag in conn.execute(
            select(contact_tags.c.contact_id, contact_tags.c.tag).where(
                contact_tags.c.contact_id.between(first, last),
                contact_tags.c.workspace_id == workspace_id,
            )
        ):
            tags.setdefault(contact_id, []).append(tag)
    return AudiencePage(rows, tags)


def _attribute_json(conn: Connection, key: str) -> ColumnElement[str]:
    """One attribute of a contact as JSON text: SQLite's ``->``, PostgreSQL's ``->``."""
    if conn.dialect.name == "postgresql":
        return cast(contacts.c.attributes.op("->")(literal(key, String)), Text)
    # Keys are template variable names, identifiers: nothing in them needs escaping.
    if '"' in key or "\\" in key:
        raise ValueError(f"attribute key {key!r} cannot be a JSON path label")
    return contacts.c.attributes.op("->", return_type=Text)(literal(f'$."{key}"', String))


def parts_this_month(conn: Connection, workspace_id: int, start: datetime) -> int:
    """Parts of the workspace's messages due since ``start`` that will be billed."""
    query = select(func.coalesce(func.sum(messages.c.parts), 0)).where(
        messages.c.workspace_id == workspace_id,
        messages.c.due_at >= start,
        messages.c.status.not_in(("blocked", "cancelled", "failed")),
    )
    return int(conn.execute(query).scalar_one())


def write_planned(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """The planner's rows, built by it in ``PLANNED_COLUMNS`` order with valid statuses."""
    copy_rows(conn, messages, PLANNED_COLUMNS, rows, trusted=True)


def tune_for_pages(conn: Connection) -> None:
    """PostgreSQL: no parallel workers in this transaction. For a page-sized query their
    start-up costs more than they save, and the audience filter's estimate (a few
    contacts per thousand) makes the planner think every page is a long scan."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")


def planning_cursor(conn: Connection, campaign_id: int) -> tuple[str, int | None]:
    """The campaign's status and the last contact planned, its row locked for the
    caller's transaction (SQLite's transactions are serialised already) — against
    other writes of the cursor, not against the keys messages refer to."""
    query = select(campaigns.c.status, campaigns.c.planned_through).where(
        campaigns.c.id == campaign_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)
    status, cursor = conn.execute(query).one()
    return status, cursor


def set_planning_cursor(conn: Connection, campaign_id: int, cursor: int | None) -> None:
    conn.execute(
        update(campaigns).where(campaigns.c.id == campaign_id).values(planned_through=cursor)
    )


def planned_so_far(conn: Connection, campaign_id: int) -> tuple[int, dict[str, int], int, int]:
    """What a campaign's rows planned so far hold: how many go out, how many are blocked
    by reason, and the parts and cost of those that go out."""
    m = messages.c
    mine = m.campaign_id == campaign_id
    blocked = {
        reason: n
        for reason, n in conn.execute(
            select(m.block_reason, func.count())
            .where(mine, m.status == "blocked")
            .group_by(m.block_reason)
        )
    }
    going, parts, cost = conn.execute(
        select(
            func.count(), func.coalesce(func.sum(m.parts), 0), func.coalesce(func.sum(m.cost_e4), 0)
        ).where(mine, m.status.not_in(("blocked", "cancelled")))
    ).one()
    return int(going), blocked, int(parts), int(cost)


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
