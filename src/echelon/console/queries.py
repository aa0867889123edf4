"""Read-only queries of console pages that no service answers: the workspace's own
record, the inbox of replies and the number a reply came from. Every query is scoped
to one workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Engine, select

from echelon.audience.phone import normalise_phone
from echelon.db.outbox import campaigns, messages, replies
from echelon.db.tables import contacts, workspaces
from echelon.errors import InvalidInput, NotFound

MAX_PAGE: Final = 200
OPT_OUT_ACTION: Final = "opt_out"


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    id: int
    slug: str
    name: str
    timezone: str


def workspace_info(engine: Engine, *, workspace_id: int) -> WorkspaceInfo:
    w = workspaces.c
    with engine.connect() as conn:
        row = conn.execute(
            select(w.id, w.slug, w.name, w.timezone).where(w.id == workspace_id)
        ).one_or_none()
    if row is None:
        raise NotFound(f"工作区 {workspace_id} 不存在")
    return WorkspaceInfo(row.id, row.slug, row.name, row.timezone)


@dataclass(frozen=True, slots=True)
class InboxReply:
    """A reply with the message it answered (None: no message of ours preceded it)."""

    id: int
    phone: str
    contact_name: str | None
    text: str
    opt_out: bool
    received_at: datetime
    answered_text: str | None
    campaign: str | None


def inbox(
    engine: Engine,
    *,
    workspace_id: int,
    phone: str | None = None,
    opt_outs_only: bool = False,
    before_id: int | None = None,
    limit: int = 50,
) -> list[InboxReply]:
    """Replies newest first, ``limit`` at a time below ``before_id``."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"每页条数须在 1–{MAX_PAGE} 之间")
    r, m = replies.c, messages.c
    query = (
        select(
            r.id,
            r.phone,
            contacts.c.name,
            r.text,
            r.action,
            r.received_at,
            m.text.label("answered_text"),
            campaigns.c.name.label("campaign"),
        )
        .select_from(
            replies.outerjoin(contacts, contacts.c.id == r.contact_id)
            .outerjoin(messages, m.id == r.message_id)
            .outerjoin(campaigns, campaigns.c.id == m.campaign_id)
        )
        .where(r.workspace_id == workspace_id)
        .order_by(r.id.desc())
        .limit(limit)
    )
    if phone:
        query = query.where(r.phone == normalise_phone(phone))
    if opt_outs_only:
        query = query.where(r.action == OPT_OUT_ACTION)
    if before_id is not None:
        query = query.where(r.id < before_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        InboxReply(
            id=row.id,
            phone=row.phone,
            contact_name=row.name,
            text=row.text,
            opt_out=row.action == OPT_OUT_ACTION,
            received_at=row.received_at,
            answered_text=row.answered_text,
            campaign=row.campaign,
        )
        for row in rows
    ]


def reply_phone(engine: Engine, *, workspace_id: int, reply_id: int) -> str:
    """The number reply ``reply_id`` of this workspace came from."""
    with engine.connect() as conn:
        phone = conn.execute(
            select(replies.c.phone).where(
                replies.c.workspace_id == workspace_id, replies.c.id == reply_id
            )
        ).scalar_one_or_none()
    if phone is None:
        raise NotFound(f"回复 {reply_id} 不存在")
    return str(phone)
