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
    Text,
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


# The price plan every workspace starts with (content.plans reads it back): ¥0.06 for
# the first 50,000 parts of a month, ¥0.055 beyond, +15% from 20:00 to 21:00 Shanghai.
DEFAULT_PRICE_PLAN_JSON = (
    '{"price_per_part":"0.055","tiers":[{"up_to_parts":50000,"price":"0.06"}],'
    '"peak":{"start":"20:00","end":"21:00","percent":"15"},"timezone":"Asia/Shanghai"}'
)


def workspace_of_contact() -> Column[int]:
    """``workspace_id`` on a table whose rows hang off a contact.

    Scoped like every table, but without its own foreign key: the contact's already
    ties the row to its workspace (and cascades), and a second per-row FK trigger
    costs PostgreSQL about a third of a bulk import's time.
    """
    return Column("workspace_id", Id, nullable=False)


def workspace_fk() -> Column[int]:
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
    # Content settings (migration 0002). Checked by the service, not by CHECK
    # constraints: adding one would make SQLite rebuild this table, and dropping a
    # table that others reference ON DELETE CASCADE would empty them.
    Column("signature", String(16)),
    Column("opt_out_text", String(16), nullable=False, server_default="拒收请回复R"),
    Column("price_plan", Json, nullable=False, server_default=DEFAULT_PRICE_PLAN_JSON),
    # Quiet hours and caps (migration 0003); NULL means the defaults of the rules.
    Column("compliance", Json),
    # Retries, failover, reply keywords, auto-replies, 空号 learning (migration 0004);
    # NULL means the defaults of dispatch.settings.
    Column("dispatch", Json),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
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
    workspace_of_contact(),
    Index(None, "workspace_id", "tag"),
)

contact_lists = Table(
    "contact_lists",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "name"),
)

contact_list_members = Table(
    "contact_list_members",
    metadata,
    Column("list_id", Id, ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    workspace_of_contact(),
    Index(None, "contact_id"),
)

consents = Table(
    "consents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_of_contact(),
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
    Index(None, "contact_id", "purpose", "revoked_at"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
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
    workspace_of_contact(),
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

workspace_words = Table(
    "workspace_words",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("word", String(50), nullable=False),
    Column("category", String(16), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("suggestion", String(100)),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "word"),
    CheckConstraint("severity IN ('block', 'warn')", name="severity"),
)

templates = Table(
    "templates",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("body", Text, nullable=False),
    # NULL: the workspace's default signature at the time of sending.
    Column("signature", String(16)),
    Column("review_status", String(16), nullable=False),
    Column("review_note", String(500)),
    Column("submitted_at", UTCDateTime()),
    Column("reviewed_at", UTCDateTime()),
    Column("reviewed_by", String(100)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "name"),
    CheckConstraint("kind IN ('marketing', 'service', 'verification')", name="kind"),
    CheckConstraint(
        "review_status IN ('draft', 'pending', 'approved', 'rejected')", name="review_status"
    ),
    Index(None, "workspace_id", "review_status"),
)

# Append-only review history: what text was created, edited, submitted, approved or
# rejected, by whom and when. ``body``/``kind``/``signature`` are snapshots (the
# signature as it applied then), so an approval still names the text it approved.
template_reviews = Table(
    "template_reviews",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("template_id", Id, ForeignKey("templates.id", ondelete="CASCADE"), nullable=False),
    workspace_fk(),
    Column("action", String(16), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("note", String(500)),
    Column("kind", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("signature", String(16)),
    Column("at", UTCDateTime(), nullable=False),
    CheckConstraint(
        "action IN ('created', 'edited', 'submitted', 'approved', 'rejected')", name="action"
    ),
    Index(None, "template_id", "at"),
    Index(None, "workspace_id", "at"),
)
