"""What comes back from a channel: delivery receipts and replies.

Receipts are idempotent (DESIGN, invariant 5): each is stored once per (channel,
provider id, status) as it arrived, then applied to its message if the message is
known by that provider id. One arriving twice changes nothing the second time; one
arriving before its submit response waits, stored, until the response is recorded
(``link_early_receipts``). The dispatcher knows most messages its receipts belong to
already (``dispatch.correlation``) and stores those linked at once
(``store_linked_receipts``, ``end_sent``). A reply is kept, tied to the latest message
sent to that number, and an opt-out keyword suppresses the number and revokes its
marketing consent in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from echelon.access.service import audit_in
from echelon.audience.consent import revoke_in
from echelon.audience.phone import InvalidNumber, normalise_phone
from echelon.audience.suppression import add_suppressions
from echelon.channels.base import InboundReply, Receipt
from echelon.db.lists import insert_rows, one_of, update_rows
from echelon.db.outbox import channels, messages, receipts, replies
from echelon.db.tables import contacts
from echelon.dispatch import queries
from echelon.dispatch.rules import OptOutKeywords
from echelon.dispatch.send import enqueue_in
from echelon.dispatch.settings import DispatchSettings, load_dispatch_settings

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
    workspace_id: int | None = None,
    settings: DispatchSettings | None = None,
) -> int:
    """``record_receipts`` inside the caller's transaction (the dispatcher batches).
    ``reconcile``: look for ``unknown`` messages the receipts may settle; the dispatcher
    skips it while no message of the channel can be ``unknown``. ``workspace_id`` and
    ``settings``: the channel's workspace and its dispatch settings, when the caller
    holds them already (the dispatcher, every few milliseconds)."""
    if workspace_id is None:
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
        new.append(_receipt_row(channel_id, workspace_id, receipt, now))
    if new:
        _store_and_apply(conn, channel_id=channel_id, new=new, now=now)
    if reconcile and any(row["destination"] for row in new):
        reconciled = reconcile_unknown(conn, channel_id=channel_id, provider_ids=provider_ids)
        apply_pending_receipts(conn, channel_id=channel_id, linked=reconciled, now=now)
    failed = [row for row in new if row["destination"] and row["status"] != "delivered"]
    if any(row["error_code"] for row in failed):
        settings = settings or load_dispatch_settings(conn, workspace_id)
        phones = {
            str(row["destination"])
            for row in failed
            if _says_empty(row["status"], row["error_code"], settings)
        }
        if phones:
            learn_invalid_numbers(
                conn, workspace_id=workspace_id, phones=phones, now=now, settings=settings
            )
    return len(new)


def _store_and_apply(
    conn: Connection, *, channel_id: int, new: list[dict[str, Any]], now: datetime
) -> None:
    """Store new final receipts linked to their messages as they go in (one write a
    receipt), and let the first of them end each message still awaiting one. A receipt
    whose message is not known by its provider id yet (it overtook the submit
    response) is stored unlinked: ``link_early_receipts`` takes it up once the
    response is recorded."""
    m = messages.c
    message_of = dict(
        conn.execute(
            select(m.provider_id, m.id).where(
                m.channel_id == channel_id,
                one_of(conn, m.provider_id, {row["provider_id"] for row in new}),
            )
        ).all()
    )
    for row in new:
        row["message_id"] = message_of.get(row["provider_id"])
    _, endings = _insert_receipts(conn, new)
    _end_awaiting(conn, endings, now)


def _insert_receipts(conn: Connection, rows: list[dict[str, Any]]) -> tuple[int, dict[int, Ending]]:
    """Insert receipt rows (one stored before is passed over): how many were new, and
    the ending of each message they are linked to (its first final receipt)."""
    stored = insert_rows(conn, receipts, rows)
    endings: dict[int, Ending] = {}
    for row in rows:
        message_id = row["message_id"]
        if message_id is not None and message_id not in endings:
            endings[message_id] = Ending(row["status"], row["error_code"], row["received_at"])
    return stored, endings


def _receipt_row(
    channel_id: int, workspace_id: int, receipt: Receipt, received_at: datetime
) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "workspace_id": workspace_id,
        "provider_id": receipt.provider_id,
        "status": receipt.status,
        "error_code": receipt.error_code,
        "done_at": receipt.done_at or received_at,
        "raw": receipt.raw,
        "destination": _phone_or_none(receipt.destination),
        "received_at": received_at,
    }


@dataclass(frozen=True, slots=True)
class Sent:
    """A submitted message the dispatcher knows to await its receipt."""

    message_id: int
    workspace_id: int
    phone: str


@dataclass(frozen=True, slots=True)
class Linked:
    """A final receipt whose message the dispatcher knows (it submitted it)."""

    channel_id: int
    workspace_id: int  # the channel's
    message_id: int
    receipt: Receipt
    received_at: datetime


def store_linked_receipts(
    conn: Connection, linked: Sequence[Linked]
) -> tuple[int, dict[int, Ending]]:
    """Store receipts already tied to their messages — one write each, no lookup: how
    many were new, and each message's ending (its first final receipt). One stored
    before (an SMSC that sent a receipt twice) is passed over."""
    rows = [
        _receipt_row(item.channel_id, item.workspace_id, item.receipt, item.received_at)
        | {"message_id": item.message_id}
        for item in linked
    ]
    return _insert_receipts(conn, rows)


def end_sent(
    conn: Connection,
    ended: Sequence[tuple[Sent, Ending]],
    *,
    now: datetime,
    settings: Mapping[int, DispatchSettings],
) -> None:
    """End each message still awaiting its receipt as its ending says; a 空号 among them
    counts towards the number's ``invalid`` listing."""
    _end_awaiting(conn, {sent.message_id: ending for sent, ending in ended}, now)
    empty: dict[int, set[str]] = {}
    for sent, ending in ended:
        workspace = settings.get(sent.workspace_id)
        if workspace is not None and _says_empty(ending.status, ending.error_code, workspace):
            empty.setdefault(sent.workspace_id, set()).add(sent.phone)
    for workspace_id, phones in empty.items():
        learn_invalid_numbers(
            conn, workspace_id=workspace_id, phones=phones, now=now, settings=settings[workspace_id]
        )


def end_by_stored_receipts(conn: Connection, *, channel_ids: Collection[int], now: datetime) -> int:
    """On taking over channels: end each message still awaiting a receipt on them whose
    final receipt is stored linked already — its previous holder stored and acknowledged
    the receipt but died before it wrote the ending (it keeps those in memory for a few
    milliseconds, see ``dispatch.correlation``). How many were ended."""
    if not channel_ids:
        return 0
    r, m = receipts.c, messages.c
    endings: dict[int, Ending] = {}
    for message_id, status, error_code, received_at in conn.execute(
        select(m.id, r.status, r.error_code, r.received_at)
        .join_from(messages, receipts, r.message_id == m.id)
        .where(m.channel_id.in_(channel_ids), m.status.in_(_AWAITING), r.status.in_(_FINAL))
        .order_by(r.id)
    ):
        endings.setdefault(message_id, Ending(status, error_code, received_at))
    return _end_awaiting(conn, endings, now)


def reconcile_unknown(
    conn: Connection, *, channel_id: int, provider_ids: Collection[str]
) -> dict[str, int]:
    """Tie receipts no message claims to ``unknown`` messages (their submit response was
    lost, so they have no provider id) by destination, where exactly one such message
    to that number waits on this channel; provider id → message id of those tied."""
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
        return {}
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
    return {provider_id: message_id for message_id, provider_id in tied.items()}


def learn_invalid_numbers(
    conn: Connection,
    *,
    workspace_id: int,
    phones: Collection[str],
    now: datetime,
    settings: DispatchSettings | None = None,
) -> int:
    """Put on the ``invalid`` list the numbers among ``phones`` whose messages came back
    with a 空号-type code at least ``invalid_after`` times; how many were listed."""
    settings = settings or load_dispatch_settings(conn, workspace_id)
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


def _says_empty(status: str, error_code: str | None, settings: DispatchSettings) -> bool:
    """Whether a receipt counts towards its number's ``invalid`` listing: only a
    空号-type code does (the rest need no count, hence no query)."""
    return status != "delivered" and error_code in settings.invalid_codes


def _phone_or_none(destination: str) -> str | None:
    if not destination:
        return None
    try:
        return normalise_phone(destination)
    except InvalidNumber:
        return None


@dataclass(frozen=True, slots=True)
class Ending:
    """The first final receipt stored for a message: what it ends the message as."""

    status: str
    error_code: str | None
    # Our clock when the receipt arrived, not the carrier's done date: that has minute
    # resolution at best, and latency (submitted_at → done_at) is measured in ms.
    done_at: datetime


def link_early_receipts(
    conn: Connection, *, channel_id: int, linked: Mapping[str, int]
) -> dict[int, Ending]:
    """For messages just tied to their provider ids (``linked``: provider id → message
    id), link the receipts stored before the tie — they overtook the submit response —
    and return each message's first final one."""
    endings: dict[int, Ending] = {}
    if linked:
        for _, message_id, status, error_code, received_at in queries.link_receipts(
            conn, channel_id=channel_id, linked=linked
        ):
            if status in _FINAL and message_id not in endings:
                endings[message_id] = Ending(status, error_code, received_at)
    return endings


def apply_pending_receipts(
    conn: Connection, *, channel_id: int, linked: Mapping[str, int], now: datetime
) -> int:
    """``link_early_receipts``, then let each message still awaiting a receipt end as
    its first final receipt says; the number ended. (The dispatcher folds the endings
    into the write of the submit responses instead: one update a message, not two.)"""
    return _end_awaiting(conn, link_early_receipts(conn, channel_id=channel_id, linked=linked), now)


def _end_awaiting(conn: Connection, endings: Mapping[int, Ending], now: datetime) -> int:
    """End each message still awaiting a receipt as its ending says; how many ended."""
    rows = [
        {"id": message_id, "status": e.status, "error_code": e.error_code,
         "done_at": e.done_at, "updated_at": now}
        for message_id, e in endings.items()
    ]  # fmt: skip
    return update_rows(conn, messages, rows, where=messages.c.status.in_(_AWAITING))


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
