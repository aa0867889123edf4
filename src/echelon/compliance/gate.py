"""The gate: the compliance rules applied to a batch of messages, fed by set-based
queries — consent, suppression and each number's recent messages in three queries
per batch, never one per message.

It runs twice for every message (DESIGN, invariant 2): when a message is planned and
again right before it is submitted, because an opt-out can arrive in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from echelon.audience.suppression import suppression_kinds
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
from echelon.db.outbox import messages
from echelon.db.tables import consents

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
_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class Candidate:
    contact_id: int
    phone: str
    kind: Kind
    text_hash: str
    due_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """``reason`` None: the message may go at ``due_at`` (moved out of quiet hours)."""

    reason: BlockReason | None
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Policy:
    quiet_hours: QuietHours
    caps: Caps


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
    contact_ids = sorted({c.contact_id for c in candidates})
    consenting = _marketing_consent(conn, contact_ids)
    suppressed = suppression_kinds(
        conn, workspace_id=workspace_id, phones={c.phone for c in candidates}
    )
    earliest = min(c.due_at for c in candidates) - policy.caps.marketing_window
    latest = max(c.due_at for c in candidates) + policy.caps.marketing_window + timedelta(days=1)
    histories = _histories(conn, contact_ids, earliest, latest, set(exclude_message_ids))
    verdicts: list[Verdict] = []
    for candidate in candidates:
        due = candidate.due_at
        reason = eligibility(
            candidate.kind,
            marketing_consent=candidate.contact_id in consenting,
            suppressions=suppressed.get(candidate.phone, ()),
        )
        if reason is None and candidate.kind == "marketing":
            due = policy.quiet_hours.next_allowed(due)
            if candidate.expires_at is not None and due >= candidate.expires_at:
                reason = BlockReason.EXPIRED
        if reason is None:
            history = histories.setdefault(candidate.contact_id, History())
            reason = cap_check(candidate.kind, due, candidate.text_hash, history, policy.caps)
            if reason is None:
                history.add(Sent(due, candidate.kind, candidate.text_hash))
        verdicts.append(Verdict(reason, due))
    return verdicts


def _marketing_consent(conn: Connection, contact_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(contact_ids), _CHUNK):
        found.update(
            conn.execute(
                select(consents.c.contact_id).where(
                    consents.c.contact_id.in_(contact_ids[start : start + _CHUNK]),
                    consents.c.purpose == "marketing",
                    consents.c.revoked_at.is_(None),
                )
            ).scalars()
        )
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
    for start in range(0, len(contact_ids), _CHUNK):
        rows = conn.execute(
            select(m.id, m.contact_id, m.due_at, m.kind, m.text_hash).where(
                m.contact_id.in_(contact_ids[start : start + _CHUNK]),
                m.due_at > earliest,
                m.due_at < latest,
                m.status.in_(COUNTED_STATUSES),
            )
        )
        for message_id, contact_id, due_at, kind, text_hash in rows:
            if message_id not in exclude:
                entries.setdefault(contact_id, []).append(Sent(due_at, kind, text_hash))
    return {contact_id: History(sent) for contact_id, sent in entries.items()}
