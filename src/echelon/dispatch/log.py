"""The message log: the outbox as people and scripts read it, newest first, filtered
by campaign, journey, status, number and creation time, a page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Engine, Select, Table, select, tuple_

from echelon.audience.phone import normalise_phone
from echelon.db.journeys import journeys
from echelon.db.outbox import MESSAGE_STATUSES, campaigns, channels, messages
from echelon.db.tables import contacts
from echelon.errors import InvalidInput, NotFound

MAX_PAGE: Final = 1000


class MessageNotFound(NotFound):
    code = "message_not_found"

    def __init__(self, message_id: int) -> None:
        super().__init__(f"短信 {message_id} 不存在")


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    id: int
    phone: str
    campaign: str | None
    journey: str | None
    kind: str
    status: str
    block_reason: str | None
    error_code: str | None
    channel: str | None
    parts: int
    cost_e4: int
    text: str
    due_at: datetime
    submitted_at: datetime | None
    done_at: datetime | None
    created_at: datetime


def message_page(
    engine: Engine,
    *,
    workspace_id: int,
    campaign: str | None = None,
    journey: str | None = None,
    statuses: Sequence[str] = (),
    phone: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[LoggedMessage]:
    """Up to ``limit`` messages created in [since, until), newest first (by creation
    time, then id), older than message ``before_id``: pass the last id back for the
    next page. Walks the index on (workspace, created_at, id), so a page costs the same
    at any depth of a log of millions."""
    unknown = set(statuses) - set(MESSAGE_STATUSES)
    if unknown:
        raise InvalidInput(
            f"未知状态 {', '.join(sorted(unknown))}，可用：{', '.join(MESSAGE_STATUSES)}"
        )
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"每页条数须在 1–{MAX_PAGE} 之间")
    if since is not None and until is not None and until <= since:
        raise InvalidInput("结束时间须晚于开始时间")
    m = messages.c
    query = (
        _logged()
        .where(m.workspace_id == workspace_id)
        .order_by(m.created_at.desc(), m.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        if campaign is not None:
            campaign_id = _named(conn, campaigns, workspace_id, campaign, "活动")
            query = query.where(m.campaign_id == campaign_id)
        if journey is not None:
            journey_id = _named(conn, journeys, workspace_id, journey, "旅程")
            query = query.where(m.journey_id == journey_id)
        if phone is not None:
            # Through the contact: the index on (contact_id, due_at) finds its messages.
            contact_id = conn.execute(
                select(contacts.c.id).where(
                    contacts.c.workspace_id == workspace_id,
                    contacts.c.phone == normalise_phone(phone),
                )
            ).scalar_one_or_none()
            if contact_id is None:
                return []
            query = query.where(m.contact_id == contact_id)
        if statuses:
            query = query.where(m.status.in_(list(statuses)))
        if since is not None:
            query = query.where(m.created_at >= since)
        if until is not None:
            query = query.where(m.created_at < until)
        if before_id is not None:
            query = query.where(_older_than(conn, workspace_id, before_id))
        return [LoggedMessage(*row) for row in conn.execute(query)]


def _older_than(conn: Connection, workspace_id: int, message_id: int) -> ColumnElement[bool]:
    """Messages after ``message_id`` in the log's order. A cursor whose message is gone
    (its contact erased meanwhile) pages on by id alone."""
    m = messages.c
    created_at = conn.execute(
        select(m.created_at).where(m.workspace_id == workspace_id, m.id == message_id)
    ).scalar_one_or_none()
    if created_at is None:
        return m.id < message_id
    return tuple_(m.created_at, m.id) < tuple_(created_at, message_id)


def get_message(engine: Engine, *, workspace_id: int, message_id: int) -> LoggedMessage:
    query = _logged().where(messages.c.workspace_id == workspace_id, messages.c.id == message_id)
    with engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    if row is None:
        raise MessageNotFound(message_id)
    return LoggedMessage(*row)


def _logged() -> Select[Any]:
    m = messages.c
    return select(
        m.id,
        m.phone,
        campaigns.c.name,
        journeys.c.name,
        m.kind,
        m.status,
        m.block_reason,
        m.error_code,
        channels.c.name,
        m.parts,
        m.cost_e4,
        m.text,
        m.due_at,
        m.submitted_at,
        m.done_at,
        m.created_at,
    ).select_from(
        messages.outerjoin(campaigns, campaigns.c.id == m.campaign_id)
        .outerjoin(journeys, journeys.c.id == m.journey_id)
        .outerjoin(channels, channels.c.id == m.channel_id)
    )


def _named(conn: Connection, table: Table, workspace_id: int, name: str, what: str) -> int:
    """The id of the workspace's row of ``table`` called ``name``; NotFound otherwise."""
    found = conn.execute(
        select(table.c.id).where(table.c.workspace_id == workspace_id, table.c.name == name)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"{what}「{name}」不存在")
    return int(found)
