"""Tables of the sending pipeline: channels, campaigns and the outbox of messages.

The outbox is the truth (DESIGN, invariant 1): every message that may ever be sent
is a row of ``messages`` before any network call, and its status is the one record
of what became of it. Receipts and replies are kept as they arrived, so that one
arriving twice or before its submit response is applied exactly once.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from echelon.db.tables import metadata, workspace_fk, workspace_of_contact
from echelon.db.types import Id, Json, UTCDateTime

MESSAGE_STATUSES = (
    "planned",
    "queued",
    "submitting",
    "submitted",
    "delivered",
    "undelivered",
    "expired",
    "rejected",
    "blocked",
    "failed",
    "unknown",
    "cancelled",
)

channels = Table(
    "channels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    # Connection settings as the channel module's typed config (secrets included,
    # never printed: the CLI and API show them masked).
    Column("config", Json, nullable=False),
    Column("carriers", Json, nullable=False),
    Column("weight", Integer, nullable=False, server_default=text("1")),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("price_plan", Json),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "name"),
    CheckConstraint("kind IN ('smpp')", name="kind"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("name", String(100), nullable=False),
    Column("template_id", Id, ForeignKey("templates.id"), nullable=False),
    # {"kind": "consenting"} | {"kind": "tag", "tag": …} | {"kind": "list", "list": …}
    Column("audience", Json, nullable=False),
    Column("send_at", UTCDateTime()),
    Column("ends_at", UTCDateTime()),
    Column("throttle_per_second", Integer),
    Column("budget_e4", BigInteger),
    # The channels the campaign prefers, by name (routing decides when empty).
    Column("channels", Json),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    # While ``planning``: the last contact (by id) whose message is written. Planning
    # commits page by page, so a plan that stopped part-way resumes after it.
    Column("planned_through", Id),
    # An A/B test (campaigns.models.Experiment), its decision included once made.
    Column("experiment", Json),
    # A test before a roll-out: when its window ends and the winner is to be chosen
    # (NULL once chosen, or without such a test). Until then the campaign is not done.
    Column("rollout_due_at", UTCDateTime()),
    UniqueConstraint("workspace_id", "name"),
    CheckConstraint(
        "status IN ('draft', 'planning', 'running', 'paused', 'completed', 'cancelled')",
        name="status",
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_of_contact(),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE")),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("text_hash", String(32), nullable=False),
    Column("parts", SmallInteger, nullable=False),
    # Money as integer ten-thousandths of a yuan: exact on both databases (SQLite has
    # no decimal type), fine enough for per-part prices such as ¥0.055 with surcharges.
    Column("cost_e4", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("block_reason", String(32)),
    # The A/B variant the planner chose (NULL: no test); analytics groups by it.
    Column("variant", String(16)),
    Column("error_code", String(64)),
    Column("error_detail", String(500)),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("channel_id", Id, ForeignKey("channels.id")),
    Column("attempts", SmallInteger, nullable=False, server_default=text("0")),
    Column("provider_id", String(64)),
    Column("submitted_at", UTCDateTime()),
    Column("done_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # An answer to a subscriber's own message (auto-reply, opt-out confirmation): the
    # per-number rate limits and the duplicate rule do not hold it back (migration 0004).
    Column("reply_id", Id),
    # The journey step that planned it (migration 0009; indexes in db/journeys.py).
    Column("journey_id", Id),
    Column("enrolment_id", Id),
    Column("journey_step", String(32)),
    # The recipient's carrier and province when the message was planned (migration
    # 0011): routing and the grouped reports read them without joining the contacts.
    Column("carrier", String(16)),
    Column("province", String(32)),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in MESSAGE_STATUSES) + ")", name="status"
    ),
    # Claiming due work, the dispatcher's hot query, in (due_at, id) order: a campaign's
    # messages mostly share one due time, so without the id every claim sorted them all
    # (migration 0013).
    Index(None, "status", "due_at", "id"),
    Index(None, "campaign_id", "status"),
    # A number's recent messages: the caps and duplicate checks of the gate.
    Index(None, "contact_id", "due_at"),
    # Receipts to their messages by provider id (migration 0013: leading, so that no
    # statistics can talk PostgreSQL into reading a channel's messages instead).
    Index(None, "provider_id", "channel_id"),
    # The message log, newest first a page at a time (migration 0012).
    Index(None, "workspace_id", "created_at", "id"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # No foreign keys to the channel or the message (migration 0014): each check locked
    # the referenced row while the dispatcher was updating it, thousands a second.
    # Channels are never deleted; forgetting a number deletes its receipts explicitly.
    Column("channel_id", Id, nullable=False),
    workspace_of_contact(),  # the channel's workspace; the channel's key scopes it
    Column("provider_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_code", String(64)),
    Column("done_at", UTCDateTime()),
    Column("raw", Text, nullable=False),
    # The receipt's destination: ties it to a message whose submit response was lost
    # (status ``unknown``, so no provider id), when that is the only such one.
    Column("destination", String(20)),
    Column("received_at", UTCDateTime(), nullable=False),
    # NULL until matched to its message (it may arrive before the submit response).
    Column("message_id", Id),
    UniqueConstraint("channel_id", "provider_id", "status"),
    Index(None, "message_id"),
)

replies = Table(
    "replies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("phone", String(20), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="SET NULL")),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="SET NULL")),
    Column("channel_id", Id, ForeignKey("channels.id", ondelete="SET NULL")),
    Column("text", Text, nullable=False),
    Column("extension", String(20)),
    Column("action", String(16)),
    Column("received_at", UTCDateTime(), nullable=False),
    Index(None, "workspace_id", "received_at"),
)

# Each channel's sessions are held by one worker at a time (DESIGN, storage and scale):
# a worker renews its lease while it runs; another may take the channel over only once
# the lease expired, and then first settles what the last holder left ``submitting``.
channel_leases = Table(
    "channel_leases",
    metadata,
    Column("channel_id", Id, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
    workspace_of_contact(),  # the channel's workspace
    Column("holder", String(100), nullable=False),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)
