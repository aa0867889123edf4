"""content: workspace content settings, workspace words, templates and their review history

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from echelon.db.types import Id, Json, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here, as a migration must be: the plan existing workspaces get. Later
# changes to the default in db/tables.py apply to new workspaces only.
_DEFAULT_PRICE_PLAN = (
    '{"price_per_part":"0.055","tiers":[{"up_to_parts":50000,"price":"0.06"}],'
    '"peak":{"start":"20:00","end":"21:00","percent":"15"},"timezone":"Asia/Shanghai"}'
)


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch rebuild: SQLite would drop and recreate
    # `workspaces`, and with foreign keys on, dropping it cascades to every table.
    op.add_column("workspaces", sa.Column("signature", sa.String(length=16), nullable=True))
    op.add_column(
        "workspaces",
        sa.Column(
            "opt_out_text", sa.String(length=16), server_default="拒收请回复R", nullable=False
        ),
    )
    op.add_column(
        "workspaces",
        sa.Column("price_plan", Json, server_default=_DEFAULT_PRICE_PLAN, nullable=False),
    )
    op.create_table(
        "workspace_words",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("word", sa.String(length=50), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("suggestion", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "severity IN ('block', 'warn')", name=op.f("ck_workspace_words_severity")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_words_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_words")),
        sa.UniqueConstraint(
            "workspace_id", "word", name=op.f("uq_workspace_words_workspace_id_word")
        ),
    )
    op.create_table(
        "templates",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=16), nullable=True),
        sa.Column("review_status", sa.String(length=16), nullable=False),
        sa.Column("review_note", sa.String(length=500), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('marketing', 'service', 'verification')", name=op.f("ck_templates_kind")
        ),
        sa.CheckConstraint(
            "review_status IN ('draft', 'pending', 'approved', 'rejected')",
            name=op.f("ck_templates_review_status"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_templates_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_templates_workspace_id_name")),
    )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_templates_workspace_id_review_status"),
            ["workspace_id", "review_status"],
            unique=False,
        )

    op.create_table(
        "template_reviews",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("template_id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=16), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "action IN ('created', 'edited', 'submitted', 'approved', 'rejected')",
            name=op.f("ck_template_reviews_action"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_reviews_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_template_reviews_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_reviews")),
    )
    with op.batch_alter_table("template_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_template_reviews_template_id_at"), ["template_id", "at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_template_reviews_workspace_id_at"), ["workspace_id", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("template_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_template_reviews_workspace_id_at"))
        batch_op.drop_index(batch_op.f("ix_template_reviews_template_id_at"))

    op.drop_table("template_reviews")
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_templates_workspace_id_review_status"))

    op.drop_table("templates")
    op.drop_table("workspace_words")
    # Native DROP COLUMN (SQLite ≥ 3.35), for the same reason as in upgrade().
    op.drop_column("workspaces", "price_plan")
    op.drop_column("workspaces", "opt_out_text")
    op.drop_column("workspaces", "signature")
