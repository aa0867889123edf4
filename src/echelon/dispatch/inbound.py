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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from echelon.access.service import audit_in
from echelon.audience.consent import revoke_in
from echelon.audience.phone import InvalidNumber, normalise_phone
from echelon.audience.suppression import add_suppressions
from echelon.channels.base import InboundReply, Receipt
from echelon.db.lists import one_of
from echelon.db.outbox import channels, messages, receipts, replies
from echelon.db.tables import contacts
from echelon.dispatch.rules import OptOutKeywords
from echelon.dispatch.send import enqueue_in
from echelon.dispatch.settings import load_dispatch_settings

earlier = receipts.alias("earlier")

# Final receipt states that end a message; an intermediate or "unknown" one is kept only.
_FINAL = ("delivered", "undelivered", "expired", "rejected")
# States a receipt may move a message out of (``unknown``: the submit response was lost).
_AWAITING = ("submitting", "submitted", "unknown")


def record_receipts(
    engine: Engine, *, channel_id: int, received: Sequence[Receipt], now: datetime
) -> int:
    """Store the receipts not seen before and apply what can be; how many were new."""
    with engine.begin() as conn:
        return record_receipts_in(conn, channel_id=channel_id, received=received, now=now)


def record_receipts_in(
    conn: Connection,
    *,
    channel_id: int,
    received: Sequence[Receipt],
    now: datetime,
    reconcile: bool = True,
) -> int:
    """``record_receipts`` inside the caller's transaction (the dispatcher batches).
    ``reconcile``: look for ``unknown`` messages the receipts may settle; the dispatcher
    skips it while no message of the channel can be ``unknown``."""
    workspace_id = conn.execute(
        select(channels.c.workspace_id).where(channels.c.id == channel_id)
    ).scalar_one()
    provider_ids = {r.provider_id for r in received}
    known = {
        (provider_id, status)
        for provider_id, status in conn.execute(
            select(receipts.c.provider_id, receipts.c.status).where(
                receipts.c.channel_id == channel_id,
                one_of(conn, receipts.c.provider_id, provider_ids),
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
                "destination": _phone_or_none(receipt.destination),
                "received_at": now,
            }
        )
    if new:
        conn.execute(insert(receipts), new)
    apply_pending_receipts(conn, channel_id=channel_id, provider_ids=provider_ids, now=now)
    if reconcile and any(row["destination"] for row in new):
        reconciled = reconcile_unknown(conn, channel_id=channel_id, provider_ids=provider_ids)
        if reconciled:
            apply_pending_receipts(conn, channel_id=channel_id, provider_ids=reconciled, now=now)
    failed_phones = {
        row["destination"]
        for row in new
        if row["destination"] and row["status"] != "delivered" and row["error_code"]
    }
    if failed_phones:
        learn_invalid_numbers(conn, workspace_id=workspace_id, phones=failed_phones, now=now)
    return len(new)


def reconcile_unknown(
    conn: Connection, *, channel_id: int, provider_ids: Collection[str]
) -> set[str]:
    """Tie receipts no message claims to ``unknown`` messages (their submit response was
    lost, so they have no provider id) by destination, where exactly one such message
    to that number waits on this channel; the provider ids tied."""
    r, m = receipts.c, messages.c
    orphans = conn.execute(
        select(r.provider_id, r.destination).where(
            r.channel_id == channel_id,
            one_of(conn, r.provider_id, provider_ids),
            r.message_id.is_(None),
            r.destination.is_not(None),
        )
    ).all()
    if not orphans:
        return set()
    by_phone: dict[str, list[int]] = {}
    for message_id, phone in conn.execute(
        select(m.id, m.phone).where(
            m.channel_id == channel_id,
            m.status == "unknown",
            m.provider_id.is_(None),
            m.phone.in_({phone for _, phone in orphans}),
        )
    ):
        by_phone.setdefault(phone, []).append(message_id)
    tied: dict[int, str] = {}
    for provider_id, phone in orphans:
        waiting = by_phone.get(phone, [])
        if len(waiting) == 1 and waiting[0] not in tied:
            tied[waiting[0]] = provider_id
    if tied:
        conn.execute(
            update(messages)
            .where(messages.c.id == bindparam("_id"))
            .values(provider_id=bindparam("_provider_id")),
            [{"_id": k, "_provider_id": v} for k, v in tied.items()],
        )
    return set(tied.values())


def learn_invalid_numbers(
    conn: Connection, *, workspace_id: int, phones: Collection[str], now: datetime
) -> int:
    """Put on the ``invalid`` list the numbers among ``phones`` whose messages came back
    with a 空号-type code at least ``invalid_after`` times; how many were listed."""
    settings = load_dispatch_settings(conn, workspace_id)
    m = messages.c
    listed = [
        phone
        for phone, count in conn.execute(
            select(m.phone, func.count())
            .where(
                # Through the contact: messages are indexed by contact, not by number.
                m.contact_id.in_(
                    select(contacts.c.id).where(
                        contacts.c.workspace_id == workspace_id,
                        contacts.c.phone.in_(list(phones)),
                    )
                ),
                m.status.in_(("undelivered", "rejected", "failed")),
                m.error_code.in_(settings.invalid_codes),
            )
            .group_by(m.phone)
        )
        if count >= settings.invalid_after
    ]
    if not listed:
        return 0
    return add_suppressions(
        conn,
        workspace_id=workspace_id,
        phones=listed,
        kind="invalid",
        source="receipt",
        reason=f"连续 {settings.invalid_after} 次返回空号类错误码",
        now=now,
    )


def _answered_lately(conn: Connection, contact_id: int | None, since: datetime) -> bool:
    """Whether the number got an answer since ``since``: one answer per cooldown, so an
    auto-responder on the other side can never start a loop with ours."""
    if contact_id is None:
        return False
    m = messages.c
    return (
        conn.execute(
            select(m.id)
            .where(m.contact_id == contact_id, m.reply_id.is_not(None), m.created_at > since)
            .limit(1)
        ).first()
        is not None
    )


def _phone_or_none(destination: str) -> str | None:
    if not destination:
        return None
    try:
        return normalise_phone(destination)
    except InvalidNumber:
        return None


def apply_pending_receipts(
    conn: Connection, *, channel_id: int, provider_ids: Collection[str], now: datetime
) -> int:
    """For the given provider ids — a batch of receipts just stored, or of submit
    responses just recorded — link the stored receipts to their messages, then let the
    first final receipt end each message still awaiting one; the number ended.
    Set-based and scoped to the batch through the (channel, provider id) indexes."""
    r, m = receipts.c, messages.c
    if conn.dialect.name == "postgresql":
        # UPDATE … FROM joins: correlated subqueries per column cost PostgreSQL a third
        # of a second per 1,000; SQLite is the other way round (it would scan receipts).
        link: tuple[Any, ...] = (m.channel_id == channel_id, m.provider_id == r.provider_id)
        message_id: Any = m.id
    else:
        message_id = (
            select(m.id)
            .where(m.channel_id == channel_id, m.provider_id == r.provider_id)
            .limit(1)
            .scalar_subquery()
        )
        link = (message_id.is_not(None),)
    conn.execute(
        update(receipts)
        .where(
            r.channel_id == channel_id,
            one_of(conn, r.provider_id, provider_ids),
            r.message_id.is_(None),
            *link,
        )
        .values(message_id=message_id)
    )
    first_final = (
        select(func.min(earlier.c.id))
        .where(earlier.c.message_id == m.id, earlier.c.status.in_(_FINAL))
        .correlate_except(earlier)  # to the UPDATE's messages, however deep it is nested
        .scalar_subquery()
    )
    awaiting = (
        m.channel_id == channel_id,
        one_of(conn, m.provider_id, provider_ids),
        m.status.in_(_AWAITING),
    )
    if conn.dialect.name == "postgresql":
        statement = (
            update(messages)
            .where(*awaiting, r.message_id == m.id, r.id == first_final)
            .values(status=r.status, error_code=r.error_code, done_at=r.received_at)
        )
    else:

        def final(column: Any) -> Any:
            return select(column).where(r.id == first_final).scalar_subquery()

        statement = (
            update(messages)
            .where(*awaiting, first_final.is_not(None))
            .values(
                status=final(r.status),
                error_code=final(r.error_code),
                done_at=final(r.received_at),
            )
        )
    # done_at is our clock, not the carrier's done date: that has minute resolution at
    # best, and latency (submitted_at → done_at) is measured in milliseconds.
    return conn.execute(statement.values(updated_at=now)).rowcount


def _audit_opt_out(
    conn: Connection,
    *,
    workspace_id: int,
    channel_id: int | None,
    phone: str,
    keyword: str,
    suppressed: bool,
    revoked: bool,
    now: datetime,
) -> None:
    """The audit lines of an opt-out reply, in its transaction: the subscriber's request
    (``consent.revoke``, whether or not a consent was live) and, when the number was not
    suppressed already, the suppression it made (``suppression.add``)."""
    actor = "reply" if channel_id is None else f"channel:{channel_id}"
    detail = {"source": "reply", "keyword": keyword}
    audit_in(
        conn, workspace_id=workspace_id, actor=actor, action="consent.revoke",
        target=f"phone:{phone}", detail=detail | {"purpose": "marketing", "revoked": revoked},
        now=now,
    )  # fmt: skip
    if suppressed:
        audit_in(
            conn, workspace_id=workspace_id, actor=actor, action="suppression.add",
            target=f"phone:{phone}", detail=detail | {"kind": "opt_out"}, now=now,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    phone: str
    message_id: int | None
    opted_out: bool
    keyword: str | None
    answer_id: int | None = None  # the auto-reply or opt-out confirmation queued, if any


def record_reply(
    engine: Engine,
    *,
    workspace_id: int,
    channel_id: int | None,
    reply: InboundReply,
    now: datetime,
    keywords: OptOutKeywords | None = None,
) -> ReplyOutcome:
    """Keep the reply, tied to the latest message sent to the number; an opt-out keyword
    suppresses the number at once; a configured answer is queued as a service message.
    ``keywords`` overrides the workspace's opt-out keywords."""
    try:
        phone = normalise_phone(reply.source)
    except InvalidNumber:
        phone = reply.source[:20]
    with engine.begin() as conn:
        settings = load_dispatch_settings(conn, workspace_id)
        keyword = (keywords or settings.keywords()).match(reply.text)
        contact_id = conn.execute(
            select(contacts.c.id).where(
                contacts.c.workspace_id == workspace_id, contacts.c.phone == phone
            )
        ).scalar_one_or_none()
        message_id = None
        if contact_id is not None:
            message_id = conn.execute(
                select(messages.c.id)
                .where(messages.c.contact_id == contact_id, messages.c.submitted_at.is_not(None))
                .order_by(messages.c.submitted_at.desc(), messages.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        reply_id = conn.execute(
            insert(replies)
            .values(
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
            .returning(replies.c.id)
        ).scalar_one()
        if keyword:
            added = add_suppressions(
                conn,
                workspace_id=workspace_id,
                phones=[phone],
                kind="opt_out",
                source="reply",
                reason=f"回复 {reply.text.strip()[:50]}",
                now=now,
            )
            revoked = contact_id is not None and revoke_in(
                conn, contact_id=contact_id, purpose="marketing", source="reply", now=now
            )
            _audit_opt_out(
                conn,
                workspace_id=workspace_id,
                channel_id=channel_id,
                phone=phone,
                keyword=keyword,
                suppressed=added > 0,
                revoked=revoked,
                now=now,
            )
        answer = settings.opt_out_confirmation if keyword else settings.answer_to(reply.text)
        answer_id = None
        if (
            answer
            and phone.startswith("+")
            and not _answered_lately(
                conn, contact_id, now - timedelta(seconds=settings.auto_reply_cooldown_seconds)
            )
        ):
            answer_id = enqueue_in(
                conn,
                workspace_id=workspace_id,
                phone=phone,
                body=answer,
                kind="service",
                now=now,
                reply_id=reply_id,
            ).message_id
    return ReplyOutcome(phone, message_id, keyword is not None, keyword, answer_id)
