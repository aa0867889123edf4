"""segments: saved segments, snapshots and the indexes that make them fast

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from echelon.db.types import Id, Json, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EVENTS_IN_WINDOW = "ix_events_workspace_id_type_occurred_at_contact_id_amount_fen"
REPLIES_BY_CONTACT = "ix_replies_contact_id_received_at"


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("definition", Json, nullable=False),
        sa.Column("preset", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_segments_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_segments_workspace_id_name")),
    )
    op.create_table(
        "segment_snapshots",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("segment_id", Id, nullable=True),
        sa.Column("campaign_id", Id, nullable=True),
        sa.Column("definition", Json, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_segment_snapshots_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_snapshots_segment_id_segments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_segment_snapshots_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_snapshots")),
    )
    with op.batch_alter_table("segment_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_snapshots_campaign_id"), ["campaign_id"], unique=False
        )

    op.create_table(
        "segment_snapshot_members",
        sa.Column("snapshot_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_segment_snapshot_members_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["segment_snapshots.id"],
            name=op.f("fk_segment_snapshot_members_snapshot_id_segment_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "snapshot_id", "contact_id", name=op.f("pk_segment_snapshot_members")
        ),
    )
    with op.batch_alter_table("segment_snapshot_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_snapshot_members_contact_id"), ["contact_id"], unique=False
        )

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            EVENTS_IN_WINDOW,
            ["workspace_id", "type", "occurred_at", "contact_id", "amount_fen"],
            unique=False,
        )
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.create_index(REPLIES_BY_CONTACT, ["contact_id", "received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.drop_index(REPLIES_BY_CONTACT)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(EVENTS_IN_WINDOW)

    with op.batch_alter_table("segment_snapshot_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_snapshot_members_contact_id"))

    op.drop_table("segment_snapshot_members")
    with op.batch_alter_table("segment_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_snapshots_campaign_id"))

    op.drop_table("segment_snapshots")
    op.drop_table("segments")
