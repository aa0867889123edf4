"""journeys: drip definitions, enrolments, timers

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from echelon.db.types import Id, Json, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BY_STEP = "uq_messages_enrolment_id_journey_step"
_BY_JOURNEY = "ix_messages_journey_id"
_HAS_ENROLMENT = sa.text("enrolment_id IS NOT NULL")
_HAS_JOURNEY = sa.text("journey_id IS NOT NULL")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("builtin", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.Column("scanned_at", UTCDateTime(), nullable=True),
        sa.Column("scanned_day", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'paused')", name=op.f("ck_journeys_status")
        ),
        _fk("journeys", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_journeys_workspace_id_name")),
    )
    op.create_table(
        "journey_versions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("journey_id", Id, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", Json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("journey_versions", "journey_id", "journeys"),
        _fk("journey_versions", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_versions")),
        sa.UniqueConstraint(
            "journey_id", "version", name=op.f("uq_journey_versions_journey_id_version")
        ),
    )
    op.create_table(
        "journey_enrolments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("journey_id", Id, nullable=False),
        sa.Column("version_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("entry_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("next_run_at", UTCDateTime(), nullable=True),
        sa.Column("waiting_since", UTCDateTime(), nullable=True),
        sa.Column("context", Json, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("entered_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("exit_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'completed', 'exited')",
            name=op.f("ck_journey_enrolments_status"),
        ),
        _fk("journey_enrolments", "contact_id", "contacts"),
        _fk("journey_enrolments", "journey_id", "journeys"),
        _fk("journey_enrolments", "version_id", "journey_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_enrolments")),
        sa.UniqueConstraint(
            "journey_id", "entry_key", name=op.f("uq_journey_enrolments_journey_id_entry_key")
        ),
    )
    op.create_index(
        op.f("ix_journey_enrolments_status_next_run_at"),
        "journey_enrolments",
        ["status", "next_run_at"],
    )
    op.create_index(
        op.f("ix_journey_enrolments_contact_id_journey_id"),
        "journey_enrolments",
        ["contact_id", "journey_id"],
    )
    op.create_table(
        "journey_step_counts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("journey_id", Id, nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        _fk("journey_step_counts", "journey_id", "journeys"),
        _fk("journey_step_counts", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_step_counts")),
    )
    op.create_index(
        op.f("ix_journey_step_counts_journey_id_step"),
        "journey_step_counts",
        ["journey_id", "step"],
    )
    op.create_table(
        "journey_segment_members",
        sa.Column("journey_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        _fk("journey_segment_members", "contact_id", "contacts"),
        _fk("journey_segment_members", "journey_id", "journeys"),
        sa.PrimaryKeyConstraint(
            "journey_id", "contact_id", name=op.f("pk_journey_segment_members")
        ),
    )
    op.create_index(
        op.f("ix_journey_segment_members_contact_id"), "journey_segment_members", ["contact_id"]
    )
    op.create_table(
        "journey_cursors",
        sa.Column("workspace_id", Id, autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("journey_cursors", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("workspace_id", "source", name=op.f("pk_journey_cursors")),
    )
    # Plain ALTER TABLE … ADD COLUMN on both: nullable, no default, no table rebuild.
    op.add_column("messages", sa.Column("journey_id", Id, nullable=True))
    op.add_column("messages", sa.Column("enrolment_id", Id, nullable=True))
    op.add_column("messages", sa.Column("journey_step", sa.String(length=32), nullable=True))
    op.create_index(
        _BY_STEP,
        "messages",
        ["enrolment_id", "journey_step"],
        unique=True,
        sqlite_where=_HAS_ENROLMENT,
        postgresql_where=_HAS_ENROLMENT,
    )
    op.create_index(
        _BY_JOURNEY,
        "messages",
        ["journey_id"],
        sqlite_where=_HAS_JOURNEY,
        postgresql_where=_HAS_JOURNEY,
    )


def downgrade() -> None:
    op.drop_index(_BY_JOURNEY, table_name="messages")
    op.drop_index(_BY_STEP, table_name="messages")
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35), as in 0007: a batch rebuild of
    # messages would cascade into what references it.
    op.drop_column("messages", "journey_step")
    op.drop_column("messages", "enrolment_id")
    op.drop_column("messages", "journey_id")
    op.drop_table("journey_cursors")
    op.drop_index(
        op.f("ix_journey_segment_members_contact_id"), table_name="journey_segment_members"
    )
    op.drop_table("journey_segment_members")
    op.drop_index(op.f("ix_journey_step_counts_journey_id_step"), table_name="journey_step_counts")
    op.drop_table("journey_step_counts")
    op.drop_index(
        op.f("ix_journey_enrolments_contact_id_journey_id"), table_name="journey_enrolments"
    )
    op.drop_index(op.f("ix_journey_enrolments_status_next_run_at"), table_name="journey_enrolments")
    op.drop_table("journey_enrolments")
    op.drop_table("journey_versions")
    op.drop_table("journeys")
