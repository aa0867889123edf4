"""Tables of the journeys package: journeys and their versions, each contact's
enrolment (its step, its timer, its context), how many reached each step, trigger state,
and the link from an outbox message to the journey step that planned it.

An enrolment is the durable state of one contact in one journey: the runner claims
due ones, advances them and writes the step's message in the same transaction, and
``uq_messages_enrolment_id_journey_step`` makes a second message for one step
impossible whatever happens.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    text,
)

from echelon.db.outbox import messages
from echelon.db.tables import metadata, workspace_fk, workspace_of_contact
from echelon.db.types import Id, Json, UTCDateTime

JOURNEY_STATUSES = ("draft", "active", "paused")
ENROLMENT_STATUSES = ("active", "completed", "exited")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


journeys = Table(
    "journeys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("name", String(100), nullable=False),
    Column("description", String(500)),
    Column("status", String(16), nullable=False),
    # The version new entries follow; those inside finish on the one they entered.
    Column("version", Integer, nullable=False),
    # The built-in journey it was copied from, if any.
    Column("builtin", String(32)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("activated_at", UTCDateTime()),
    # Trigger state: the last periodic scan (segment, inactivity) and the last
    # workspace-local day a daily trigger (date, holiday, inactivity) ran.
    Column("scanned_at", UTCDateTime()),
    Column("scanned_day", Date),
    UniqueConstraint("workspace_id", "name"),
    CheckConstraint(f"status IN {_in(JOURNEY_STATUSES)}", name="status"),
)

journey_versions = Table(
    "journey_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("journey_id", Id, ForeignKey("journeys.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    # The validated definition (journeys.models), segments named by id.
    Column("definition", Json, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("journey_id", "version"),
)

journey_enrolments = Table(
    "journey_enrolments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_of_contact(),
    Column("journey_id", Id, ForeignKey("journeys.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", Id, ForeignKey("journey_versions.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    # What entered it (``event:<id>``, ``birthday:<year>`` …): entering is idempotent.
    Column("entry_key", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    # The step to run next (while active), or the step it finished at.
    Column("step", String(32), nullable=False),
    Column("next_run_at", UTCDateTime()),
    # When it began waiting at ``step`` (wait, wait_for); NULL when it has just arrived.
    Column("waiting_since", UTCDateTime()),
    # The trigger's facts (the cart, the order …), template variables of its messages.
    Column("context", Json, nullable=False, server_default=text("'{}'")),
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("exit_reason", String(16)),
    UniqueConstraint("journey_id", "entry_key"),
    CheckConstraint(f"status IN {_in(ENROLMENT_STATUSES)}", name="status"),
    # The runner's claim: due active enrolments, oldest first.
    Index(None, "status", "next_run_at"),
    Index(None, "contact_id", "journey_id"),
)

# How many enrolments reached each step after their first, counted per batch in the
# batch's transaction (append-only: runners never wait on each other's counters).
journey_step_counts = Table(
    "journey_step_counts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("journey_id", Id, ForeignKey("journeys.id", ondelete="CASCADE"), nullable=False),
    Column("step", String(32), nullable=False),
    Column("entered", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index(None, "journey_id", "step"),
)

# Who was in a segment-triggered journey's segment at its last scan: entering is
# becoming a member since then.
journey_segment_members = Table(
    "journey_segment_members",
    metadata,
    Column("journey_id", Id, ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    workspace_of_contact(),
    Index(None, "contact_id"),
)

# Per workspace, the last row of a source (events, clicks, suppressions) the runner
# has read: triggers, goals, wake-ups and opt-outs are read once, in id order.
journey_cursors = Table(
    "journey_cursors",
    metadata,
    Column(
        "workspace_id",
        Id,
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("source", String(16), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# A journey step's message: at most one per enrolment and step (exactly-once steps).
# Partial, so campaign messages (no enrolment) cost these indexes nothing.
messages_by_enrolment_step = Index(
    "uq_messages_enrolment_id_journey_step",
    messages.c.enrolment_id,
    messages.c.journey_step,
    unique=True,
    sqlite_where=text("enrolment_id IS NOT NULL"),
    postgresql_where=text("enrolment_id IS NOT NULL"),
)
messages_by_journey = Index(
    "ix_messages_journey_id",
    messages.c.journey_id,
    sqlite_where=text("journey_id IS NOT NULL"),
    postgresql_where=text("journey_id IS NOT NULL"),
)

__all__ = [
    "ENROLMENT_STATUSES",
    "JOURNEY_STATUSES",
    "journey_cursors",
    "journey_enrolments",
    "journey_segment_members",
    "journey_step_counts",
    "journey_versions",
    "journeys",
    "messages_by_enrolment_step",
    "messages_by_journey",
    "metadata",
]
