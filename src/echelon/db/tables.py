"""Table metadata: the one description of the schema, shared by both databases.

Every table that holds customer data carries ``workspace_id`` (tenancy invariant).
Migrations under ``db/migrations`` build exactly this; a test diffs the two.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    text,
)

from echelon.db.types import Id, Json, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _workspace_fk() -> Column[int]:
    return Column(
        "workspace_id", Id, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )


workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    Column("phone", String(20), nullable=False),
    Column("name", String(100)),
    Column("gender", String(8)),
    Column("birthday", Date),
    Column("birthday_lunar", Boolean, nullable=False, server_default=text("false")),
    Column("province", String(32)),
    Column("city", String(32)),
    Column("carrier", String(16)),
    Column("attributes", Json, nullable=False, server_default=text("'{}'")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "phone"),
    CheckConstraint("gender IN ('male', 'female')", name="gender"),
)

contact_tags = Table(
    "contact_tags",
    metadata,
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    _workspace_fk(),
    Index(None, "workspace_id", "tag"),
)

contact_lists = Table(
    "contact_lists",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "name"),
)

contact_list_members = Table(
    "contact_list_members",
    metadata,
    Column("list_id", Id, ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    _workspace_fk(),
    Index(None, "contact_id"),
)

consents = Table(
    "consents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("granted_at", UTCDateTime(), nullable=False),
    Column("source", String(64), nullable=False),
    Column("proof", String(500)),
    Column("revoked_at", UTCDateTime()),
    Column("revoke_source", String(64)),
    CheckConstraint("purpose IN ('marketing', 'service')", name="purpose"),
    # At most one live grant per contact and purpose; revoked rows are the history.
    Index(
        "uq_consents_live",
        "contact_id",
        "purpose",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
    Index(None, "workspace_id", "purpose"),
    Index(None, "contact_id", "purpose", "revoked_at"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    Column("phone", String(20), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reason", String(500)),
    Column("source", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "phone", "kind"),
    CheckConstraint("kind IN ('opt_out', 'blacklist', 'dnc', 'invalid')", name="kind"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(32), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("amount_fen", BigInteger),
    Column("order_id", String(64)),
    Column("category", String(64)),
    Column("coupon_code", String(64)),
    Column("properties", Json, nullable=False, server_default=text("'{}'")),
    # Idempotency: the caller's event id, or a digest of the event's content.
    Column("event_key", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "event_key"),
    # Leads with contact_id so that deleting a contact (cascade) is indexed too.
    Index(None, "contact_id", "type", "occurred_at"),
    Index(None, "workspace_id", "type", "occurred_at"),
)
