"""foundation: workspaces, contacts, consent, suppression, events

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from echelon.db.types import Id, Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("slug", name=op.f("uq_workspaces_slug")),
    )
    op.create_table(
        "contact_lists",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_lists_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_lists")),
        sa.UniqueConstraint(
            "workspace_id", "name", name=op.f("uq_contact_lists_workspace_id_name")
        ),
    )
    op.create_table(
        "contacts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("gender", sa.String(length=8), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column(
            "birthday_lunar", sa.Boolean(), server_default=sa.text("(false)"), nullable=False
        ),
        sa.Column("province", sa.String(length=32), nullable=True),
        sa.Column("city", sa.String(length=32), nullable=True),
        sa.Column("carrier", sa.String(length=16), nullable=True),
        sa.Column("attributes", Json, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("gender IN ('male', 'female')", name=op.f("ck_contacts_gender")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contacts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("workspace_id", "phone", name=op.f("uq_contacts_workspace_id_phone")),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('opt_out', 'blacklist', 'dnc', 'invalid')", name=op.f("ck_suppressions_kind")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_suppressions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint(
            "workspace_id", "phone", "kind", name=op.f("uq_suppressions_workspace_id_phone_kind")
        ),
    )
    op.create_table(
        "consents",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("proof", sa.String(length=500), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoke_source", sa.String(length=64), nullable=True),
        sa.CheckConstraint("purpose IN ('marketing', 'service')", name=op.f("ck_consents_purpose")),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_consents_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consents_contact_id_purpose_revoked_at"),
            ["contact_id", "purpose", "revoked_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_consents_live",
            ["contact_id", "purpose"],
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )

    op.create_table(
        "contact_list_members",
        sa.Column("list_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_list_members_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["contact_lists.id"],
            name=op.f("fk_contact_list_members_list_id_contact_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "contact_id", name=op.f("pk_contact_list_members")),
    )
    with op.batch_alter_table("contact_list_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_list_members_contact_id"), ["contact_id"], unique=False
        )
    op.create_table(
        "contact_tags",
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_tags_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "tag", name=op.f("pk_contact_tags")),
    )
    with op.batch_alter_table("contact_tags", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_tags_workspace_id_tag"), ["workspace_id", "tag"], unique=False
        )

    op.create_table(
        "events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.Column("properties", Json, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_events_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "workspace_id", "event_key", name=op.f("uq_events_workspace_id_event_key")
        ),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_contact_id_type_occurred_at"),
            ["contact_id", "type", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_events_workspace_id_type_occurred_at"),
            ["workspace_id", "type", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_workspace_id_type_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_events_contact_id_type_occurred_at"))

    op.drop_table("events")
    with op.batch_alter_table("contact_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_tags_workspace_id_tag"))

    op.drop_table("contact_tags")
    with op.batch_alter_table("contact_list_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_list_members_contact_id"))
    op.drop_table("contact_list_members")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_consents_live",
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_consents_contact_id_purpose_revoked_at"))

    op.drop_table("consents")
    op.drop_table("suppressions")
    op.drop_table("contacts")
    op.drop_table("contact_lists")
    op.drop_table("workspaces")
