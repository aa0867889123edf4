"""dispatch: channel leases, receipt destinations, dispatch settings

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from echelon.db.types import Id, Json, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("dispatch", Json, nullable=True))
    op.add_column("messages", sa.Column("reply_id", Id, nullable=True))
    op.add_column("receipts", sa.Column("destination", sa.String(length=20), nullable=True))
    op.create_table(
        "channel_leases",
        sa.Column("channel_id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_id"),
    )


def downgrade() -> None:
    op.drop_table("channel_leases")
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch rebuild would drop and
    # re-create workspaces, and the drop would cascade into every workspace's data.
    op.drop_column("receipts", "destination")
    op.drop_column("messages", "reply_id")
    op.drop_column("workspaces", "dispatch")
