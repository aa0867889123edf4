"""Tables of the segments package: saved segments and the membership snapshots taken
when a campaign starts, plus the indexes its conditions read through.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from echelon.db.outbox import replies
from echelon.db.tables import events, metadata, workspace_fk, workspace_of_contact
from echelon.db.types import Id, Json, UTCDateTime

segments = Table(
    "segments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("name", String(100), nullable=False),
    Column("description", String(500)),
    # The validated definition (segments.models), references to other segments by id.
    Column("definition", Json, nullable=False),
    # The preset it was copied from, if any; the copy is the segment's own to edit.
    Column("preset", String(32)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "name"),
)

# Who was in a segment at one moment (a campaign's start), so that an audience read
# later does not shift as events arrive. ``definition`` is what was evaluated.
segment_snapshots = Table(
    "segment_snapshots",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("segment_id", Id, ForeignKey("segments.id", ondelete="SET NULL")),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE")),
    Column("definition", Json, nullable=False),
    Column("size", Integer, nullable=False),
    Column("taken_at", UTCDateTime(), nullable=False),
    Index(None, "campaign_id"),
)

segment_snapshot_members = Table(
    "segment_snapshot_members",
    metadata,
    Column(
        "snapshot_id",
        Id,
        ForeignKey("segment_snapshots.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    workspace_of_contact(),
    Index(None, "contact_id"),
)

# Conditions on a recent window ("bought in the last 30 days", "added to cart in 24 h")
# read the window's events as one set: from this index alone, without the table.
events_in_window = Index(
    "ix_events_workspace_id_type_occurred_at_contact_id_amount_fen",
    events.c.workspace_id,
    events.c.type,
    events.c.occurred_at,
    events.c.contact_id,
    events.c.amount_fen,
)

# "Replied in the last N days" looks up one contact's replies.
replies_by_contact = Index(
    "ix_replies_contact_id_received_at", replies.c.contact_id, replies.c.received_at
)

__all__ = [
    "events_in_window",
    "metadata",
    "replies_by_contact",
    "segment_snapshot_members",
    "segment_snapshots",
    "segments",
]
