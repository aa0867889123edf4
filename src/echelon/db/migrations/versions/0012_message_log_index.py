"""message log index: a workspace's messages by creation time, so the console's and
the API's message log reads a page at any depth (and a time range) from the index
instead of sorting the outbox

Revision ID: 0012
Revises: 0011

A plain CREATE INDEX: the migrations run in one transaction, which CONCURRENTLY cannot
join. On PostgreSQL it holds writes to ``messages`` while it builds — on an outbox of
many millions, upgrade at a quiet hour.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_INDEX = "ix_messages_workspace_id_created_at_id"


def upgrade() -> None:
    op.create_index(_INDEX, "messages", ["workspace_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="messages")
