"""The gate: the compliance rules applied to a batch of messages, fed by set-based
queries — consent, suppression and each number's recent messages in three queries
per batch, never one per message.

It runs twice for every message (DESIGN, invariant 2): when a message is planned and
again right before it is submitted, because an opt-out can arrive in between.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, Connection, bindparam, select

from echelon.compliance.rules import (
    BlockReason,
    Caps,
    History,
    Kind,
    QuietHours,
    Sent,
    cap_check,
    eligibility,
)
from echelon.db.bulk import among
from echelon.db.outbox import messages
from echelon.db.tables import consents, suppressions

# Messages that reached, or may still reach, the person: they count against caps.
COUNTED_STATUSES = (
    "planned",
    "queued",
    "submitting",
    "submitted",
    "delivered",
    "undelivered",
    "expired",
    "unknown",
)
_COUNTED = frozenset(COUNTED_STATUSES)
# A batch of contact ids this dense (a planner's page walks ids in order) is read as
# one index range and filtered here, cheaper than probing the index once per id.
_DENSE = 2


class Candidate(NamedTuple):
    contact_id: int
    phone: str
    kind: Kind
    text_hash: str
    due_at: datetime
    expires_at: datetime | None = None


class Verdict(NamedTuple):
    """``reason`` None: the message may go at ``due_at`` (moved out of quiet hours)."""

    reason: BlockReason | None
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Policy:
    quiet_hours: QuietHours
    caps: Caps


_NO_HISTORY = History()


def judge(
    conn: Connection,
    *,
    workspace_id: int,
    policy: Policy,
    candidates: Sequence[Candidate],
    exclude_message_ids: Iterable[int] = (),
) -> list[Verdict]:
    """A verdict per candidate, in order. Candidates accepted earlier in the batch count
    against later ones, so one batch can never break a cap on its own.

    ``exclude_message_ids``: the messages being re-judged at send time, which must not
    count against themselves.
    """
    if not candidates:
        return []
    ids = [c.contact_id for c in candidates]
    contact_ids = sorted(set(ids))
    # Only a contact met again later in the batch needs this batch's messages recorded.
    repeated = (
        set()
        if len(contact_ids) == len(ids)
        else {contact_id for contact_id, times in Counter(ids).items() if times > 1}
    )
    consenting = (
        _marketing_consent(conn, contact_ids)
        if any(c.kind == "marketing" for c in candidates)
        else set()
    )
    suppressed = _suppressions(conn, workspace_id, {c.phone for c in candidates})
    earliest = min(c.due_at for c in candidates) - policy.caps.marketing_window
    latest = max(c.due_at for c in candidates) + policy.caps.marketing_window + timedelta(days=1)
    histories = _histories(conn, contact_ids, earliest, latest, set(exclude_message_ids))
    quiet_hours, caps = policy.quiet_hours, policy.caps
    allowed_at: dict[datetime, datetime] = {}

    def verdict(candidate: Candidate) -> Verdict:
        contact_id, phone, kind, text_hash, due, expires_at = candidate
        kinds = suppressed.get(phone)
        if kinds is not None:
            reason = eligibility(
                kind, marketing_consent=contact_id in consenting, suppressions=kinds
            )
        elif kind == "marketing" and contact_id not in consenting:
            reason = BlockReason.NO_CONSENT
        else:
            reason = None
        if reason is None and kind == "marketing":
            # A batch shares a few send times; each is moved out of quiet hours once.
            moved = allowed_at.get(due)
            if moved is None:
                moved = allowed_at[due] = quiet_hours.next_allowed(due)
            due = moved
            if expires_at is not None and due >= expires_at:
                reason = BlockReason.EXPIRED
        if reason is None:
            history = histories.get(contact_id)
            known = _NO_HISTORY if history is None else history
            reason = cap_check(kind, due, text_hash, known, caps)
            if reason is None and contact_id in repeated:
                if history is None:
                    history = histories[contact_id] = History()
                history.add(Sent(due, kind, text_hash))
        return Verdict(reason, due)

    # Most candidates of a batch have no suppression, no history and no second message
    # in it: their verdict depends only on kind, times and consent, so is reached once.
    plain: dict[tuple[object, ...], Verdict] = {}
    verdicts: list[Verdict] = []
    for candidate in candidates:
        contact_id, phone, kind, _, due, expires_at = candidate
        if phone in suppressed or contact_id in histories or contact_id in repeated:
            verdicts.append(verdict(candidate))
            continue
        key = (kind, due, due.tzinfo, expires_at, contact_id in consenting)
        found = plain.get(key)
        if found is None:
            found = plain[key] = verdict(candidate)
        verdicts.append(found)
    return verdicts


def _contacts_in(
    conn: Connection, column: ColumnElement[int], contact_ids: list[int]
) -> ColumnElement[bool]:
    """``column`` among the sorted ``contact_ids``, or within their range when that is
    dense: callers look results up by id, so a few extra rows are harmless."""
    if contact_ids[-1] - contact_ids[0] < _DENSE * len(contact_ids):
        return column.between(contact_ids[0], contact_ids[-1])
    return among(conn, column, contact_ids)


def _marketing_consent(conn: Connection, contact_ids: list[int]) -> set[int]:
    return set(
        conn.execute(
            select(consents.c.contact_id).where(
                _contacts_in(conn, consents.c.contact_id, contact_ids),
                consents.c.purpose == "marketing",
                consents.c.revoked_at.is_(None),
            )
        )
        .scalars()
        .all()
    )


# A single message (the send API, an auto-reply) is judged on statements built once:
# building one costs more than the database takes to answer it.
_SUPPRESSIONS_OF_ONE = select(suppressions.c.phone, suppressions.c.kind).where(
    suppressions.c.workspace_id == bindparam("workspace_id"),
    suppressions.c.phone == bindparam("phone"),
)
_HISTORY_OF_ONE = select(
    messages.c.id,
    messages.c.contact_id,
    messages.c.due_at,
    messages.c.kind,
    messages.c.text_hash,
    messages.c.status,
).where(
    messages.c.contact_id == bindparam("contact_id"),
    messages.c.due_at > bindparam("earliest"),
    messages.c.due_at < bindparam("latest"),
)


def _suppressions(conn: Connection, workspace_id: int, phones: set[str]) -> dict[str, set[str]]:
    """The suppression kinds of each number that has any (as ``suppression_kinds``)."""
    found: dict[str, set[str]] = {}
    if len(phones) == 1:
        (phone,) = phones
        rows = conn.execute(
            _SUPPRESSIONS_OF_ONE, {"workspace_id": workspace_id, "phone": phone}
        ).all()
    else:
        rows = conn.execute(
            select(suppressions.c.phone, suppressions.c.kind).where(
                suppressions.c.workspace_id == workspace_id,
                among(conn, suppressions.c.phone, phones),
            )
        ).all()
    for phone, kind in rows:
        found.setdefault(phone, set()).add(kind)
    return found


def _histories(
    conn: Connection,
    contact_ids: list[int],
    earliest: datetime,
    latest: datetime,
    exclude: set[int],
) -> dict[int, History]:
    entries: dict[int, list[Sent]] = {}
    m = messages.c
    # Statuses are filtered here, not in SQL: with only the contact and the time in the
    # query, (contact_id, due_at) is its one useful index. A status condition tempted
    # both databases into (status, due_at, id), which spans every message of a plan in
    # progress — read again for every page.
    if len(contact_ids) == 1:
        rows = conn.execute(
            _HISTORY_OF_ONE,
            {"contact_id": contact_ids[0], "earliest": earliest, "latest": latest},
        ).all()
    else:
        rows = conn.execute(
            select(m.id, m.contact_id, m.due_at, m.kind, m.text_hash, m.status).where(
                _contacts_in(conn, m.contact_id, contact_ids),
                m.due_at > earliest,
                m.due_at < latest,
            )
        ).all()
    for message_id, contact_id, due_at, kind, text_hash, status in rows:
        if status in _COUNTED and message_id not in exclude:
            entries.setdefault(contact_id, []).append(Sent(due_at, kind, text_hash))
    return {contact_id: History(sent) for contact_id, sent in entries.items()}
