"""dispatch indexes that hold their plans: the claim's with the id, the provider id's
leading

The dispatcher claims due messages in (due_at, id) order, and a campaign's messages
mostly share one due time: with (status, due_at) alone every claim read all the queued
messages of that time and sorted them for the first 1,000 (at 100,000 queued on
PostgreSQL: 115 ms and a sort spilled to disk, each batch). With the id in the index
the claim reads its 1,000 in order and stops.

Receipts find their messages by ``provider_id = ANY(…)`` on a channel. On (channel_id,
provider_id), statistics taken while the campaign's messages had no channel yet made
PostgreSQL read every message of the channel and filter (66 ms a batch at 200,000);
with the provider id leading, the index is only usable by it: 2 ms a batch.

Revision ID: 0013
Revises: 0012

A plain CREATE INDEX, as in 0012: on an outbox of many millions, upgrade at a quiet hour.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_CHANGES = (
    ("ix_messages_status_due_at", ["status", "due_at"], "ix_messages_status_due_at_id",
     ["status", "due_at", "id"]),
    ("ix_messages_channel_id_provider_id", ["channel_id", "provider_id"],
     "ix_messages_provider_id_channel_id", ["provider_id", "channel_id"]),
)  # fmt: skip


def upgrade() -> None:
    for old, _, new, columns in _CHANGES:
        op.create_index(new, "messages", columns, unique=False)
        op.drop_index(old, table_name="messages")


def downgrade() -> None:
    for old, columns, new, _ in _CHANGES:
        op.create_index(old, "messages", columns, unique=False)
        op.drop_index(new, table_name="messages")
