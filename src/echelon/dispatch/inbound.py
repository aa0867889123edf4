"""What comes back from a channel: delivery receipts and replies.

Receipts are idempotent (DESIGN, invariant 5): each is stored once per (channel,
provider id, status) as it arrived, then applied to its message if the message is
known by that provider id. One arriving twice changes nothing the second time; one
arriving before its submit response waits, stored, until ``apply_pending_receipts``
runs after the response is recorded. A reply is kept, tied to the latest message sent
to that number, and an opt-out keyword suppresses the number and revokes its
marketing consent in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from echelon.audience.consent import revoke_in
from echelon.audience.phone import InvalidNumber, normalise_phone
from echelon.audience.suppression import add_suppressions
from echelon.channels.base import InboundReply, Receipt
from echelon.db.outbox import channels, messages, receipts, replies
from echelon.db.tables import contacts
from echelon.dispatch.rules import OptOutKeywords

# Final receipt states that end a message; an intermediate or "unknown" one is kept only.
_FINAL = ("delivered", "undelivered", "expired", "rejected")
# States a receipt may move a message out of (``unknown``: the submit response was lost).
_AWAITING = ("submitting", "submitted", "unknown")


def record_receipts(
    engine: Engine, *, channel_id: int, received: Sequence[Receipt], now: datetime
) -> int:
    """Store the receipts not seen before and apply what can be; how many were new."""
    with engine.begin() as conn:
        workspace_id = conn.execute(
            select(channels.c.workspace_id).where(channels.c.id == channel_id)
        ).scalar_one()
        known = {
            (provider_id, status)
            for provider_id, status in conn.execute(
                select(receipts.c.provider_id, receipts.c.status).where(
                    receipts.c.channel_id == channel_id,
                    receipts.c.provider_id.in_({r.provider_id for r in received}),
                )
            )
        }
        new = []
        for receipt in received:
            key = (receipt.provider_id, receipt.status)
            if key in known or not receipt.final:
                continue
            known.add(key)
            new.append(
                {
                    "channel_id": channel_id,
                    "workspace_id": workspace_id,
                    "provider_id": receipt.provider_id,
                    "status": receipt.status,
                    "error_code": receipt.error_code,
                    "done_at": receipt.done_at or now,
                    "raw": receipt.raw,
                    "received_at": now,
                }
            )
        if new:
            conn.execute(insert(receipts), new)
        apply_pending_receipts(
            conn, channel_id=channel_id, provider_ids={r.provider_id for r in received}, now=now
        )
    return len(new)


def apply_pending_receipts(
    conn: Connection, *, channel_id: int, provider_ids: Collection[str], now: datetime
) -> int:
    """For the given provider ids — a batch of receipts just stored, or of submit
    responses just recorded — link the stored receipts to their messages, then let the
    first final receipt end each message still awaiting one; the number ended.
    Set-based and scoped to the batch through the (channel, provider id) indexes."""
    r, m = receipts.c, messages.c
    ids = list(provider_ids)
    message_of = (
        select(m.id)
        .where(m.channel_id == channel_id, m.provider_id == r.provider_id)
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(
        update(receipts)
        .where(
            r.channel_id == channel_id,
            r.provider_id.in_(ids),
            r.message_id.is_(None),
            message_of.is_not(None),
        )
        .values(message_id=message_of)
    )

    def first_final(column: Any) -> Any:
        return (
            select(column)
            .where(r.message_id == m.id, r.status.in_(_FINAL))
            .order_by(r.id)
            .limit(1)
            .scalar_subquery()
        )

    return conn.execute(
        update(messages)
        .where(
            m.channel_id == channel_id,
            m.provider_id.in_(ids),
            m.status.in_(_AWAITING),
            first_final(r.id).is_not(None),
        )
        .values(
            status=first_final(r.status),
            error_code=first_final(r.error_code),
            done_at=first_final(r.done_at),
            updated_at=now,
        )
    ).rowcount


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    phone: str
    message_id: int | None
    opted_out: bool
    keyword: str | None


def record_reply(
    engine: Engine,
    *,
    workspace_id: int,
    channel_id: int | None,
    reply: InboundReply,
    keywords: OptOutKeywords,
    now: datetime,
) -> ReplyOutcome:
    """Keep the reply; an opt-out keyword suppresses the number at once."""
    try:
        phone = normalise_phone(reply.source)
    except InvalidNumber:
        phone = reply.source[:20]
    keyword = keywords.match(reply.text)
    with engine.begin() as conn:
        contact_id = conn.execute(
            select(contacts.c.id).where(
                contacts.c.workspace_id == workspace_id, contacts.c.phone == phone
            )
        ).scalar_one_or_none()
        message_id = conn.execute(
            select(messages.c.id)
            .where(
                messages.c.workspace_id == workspace_id,
                messages.c.phone == phone,
                messages.c.submitted_at.is_not(None),
            )
            .order_by(messages.c.submitted_at.desc(), messages.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        conn.execute(
            insert(replies).values(
                workspace_id=workspace_id,
                phone=phone,
                contact_id=contact_id,
                message_id=message_id,
                channel_id=channel_id,
                text=reply.text,
                extension=reply.extension or None,
                action="opt_out" if keyword else None,
                received_at=reply.received_at,
            )
        )
        if keyword:
            add_suppressions(
                conn,
                workspace_id=workspace_id,
                phones=[phone],
                kind="opt_out",
                source="reply",
                reason=f"回复 {reply.text.strip()[:50]}",
                now=now,
            )
            if contact_id is not None:
                revoke_in(conn, contact_id=contact_id, purpose="marketing", source="reply", now=now)
    return ReplyOutcome(phone, message_id, keyword is not None, keyword)
