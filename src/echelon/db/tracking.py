"""Tables of tracking and analytics: short links and their clicks, coupons, conversions,
complaints, metric thresholds and alerts, and outgoing webhooks with their delivery log.

Links, clicks and coupons are written in bulk (one per recipient, one per click), so,
like the outbox, they carry ``workspace_id`` without a foreign key of their own: the
contact or link they hang off ties them to the workspace and cascades.
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

BOT_REASONS = ("head", "agent", "repeat")
CONVERSION_SOURCES = ("coupon", "click", "delivery")
WEBHOOK_EVENTS = ("receipt", "reply", "opt_out", "click", "conversion", "test")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# One row per workspace that changed a default (tracking.settings holds the defaults).
tracking_settings = Table(
    "tracking_settings",
    metadata,
    Column(
        "workspace_id",
        Id,
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("short_domain", String(100), nullable=False),
    Column("code_length", SmallInteger, nullable=False),
    Column("click_window_s", Integer, nullable=False),
    Column("delivery_window_s", Integer, nullable=False),
    # Purchase events up to this id have been through attribution.
    Column("attributed_event_id", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", UTCDateTime(), nullable=False),
)

links = Table(
    "links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_of_contact(),
    # Unique across workspaces: the redirect knows only the code (domains may be shared).
    Column("code", String(8), nullable=False, unique=True),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE")),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE")),
    Column("target_url", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "contact_id"),
    Index(None, "campaign_id"),
    Index(None, "message_id"),
)

# Every hit is kept; ``human`` is false for previews and scanners, with the reason.
clicks = Table(
    "clicks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_of_contact(),
    Column("link_id", Id, ForeignKey("links.id", ondelete="CASCADE"), nullable=False),
    # Copied from the link so reports and attribution need not join it.
    Column("message_id", Id),
    Column("contact_id", Id, nullable=False),
    Column("campaign_id", Id),
    Column("clicked_at", UTCDateTime(), nullable=False),
    Column("human", Boolean, nullable=False),
    Column("bot_reason", String(8)),
    Column("user_agent", String(300)),
    Column("ip_hash", String(16)),
    CheckConstraint(f"bot_reason IN {_in(BOT_REASONS)}", name="bot_reason"),
    Index(None, "link_id"),
    Index(None, "contact_id", "clicked_at"),
    Index(None, "campaign_id", "message_id"),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_of_contact(),
    Column("code", String(16), nullable=False),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE")),
    # NULL for codes generated ahead of a send (``coupons generate``).
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE")),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE")),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("redeemed_at", UTCDateTime()),
    Column("order_id", String(64)),
    Column("amount_fen", BigInteger),
    UniqueConstraint("workspace_id", "code"),
    Index(None, "campaign_id"),
    Index(None, "contact_id"),
    Index(None, "message_id"),
)

# A purchase credited to the message that earned it; one order is credited once.
conversions = Table(
    "conversions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("order_id", String(64), nullable=False),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("campaign_id", Id),
    Column("contact_id", Id, nullable=False),
    Column("source", String(16), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("coupon_id", Id, ForeignKey("coupons.id", ondelete="SET NULL")),
    Column("event_id", Id, ForeignKey("events.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "order_id"),
    CheckConstraint(f"source IN {_in(CONVERSION_SOURCES)}", name="source"),
    Index(None, "message_id"),
    Index(None, "campaign_id"),
    Index(None, "coupon_id"),
    Index(None, "event_id"),
)

# Complaint lists the channels send back, each tied to the message that prompted it.
complaints = Table(
    "complaints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("phone", String(20), nullable=False),
    Column("complained_at", UTCDateTime(), nullable=False),
    Column("channel", String(64)),
    Column("note", String(500)),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="SET NULL")),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "phone", "complained_at"),
    Index(None, "message_id"),
    Index(None, "campaign_id"),
)

# Only the thresholds a workspace changed; analytics.models holds the defaults.
analytics_settings = Table(
    "analytics_settings",
    metadata,
    Column(
        "workspace_id",
        Id,
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("thresholds", Json, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# A campaign's report as last computed, per grouping: its messages by key, status,
# reason and latency bucket, re-read instead of re-scanning the outbox while fresh and
# for good once no message of the campaign can change any more.
report_snapshots = Table(
    "report_snapshots",
    metadata,
    Column(
        "campaign_id",
        Id,
        ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("grouping", String(16), primary_key=True),
    workspace_fk(),
    Column("computed_at", UTCDateTime(), nullable=False),
    Column("settled", Boolean, nullable=False),
    Column("outcomes", Json, nullable=False),
    # What followed the messages (clicks …): kept a short while only, even once settled.
    Column("followed_at", UTCDateTime()),
    Column("follow_ups", Json),
)

# A campaign metric past its alert level; rates in parts per million, exact everywhere.
metric_alerts = Table(
    "metric_alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("metric", String(32), nullable=False),
    Column("value_ppm", Integer, nullable=False),
    Column("threshold_ppm", Integer, nullable=False),
    Column("advice", String(200), nullable=False),
    Column("raised_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    UniqueConstraint("campaign_id", "metric"),
    Index(None, "workspace_id", "raised_at"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("url", String(500), nullable=False),
    Column("secret", String(64), nullable=False),
    Column("events", Json, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    # Per event, the id of the last source row (click, receipt …) fanned out.
    Column("cursors", Json, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "url"),
)

# The webhook outbox and its delivery log: one row per event and endpoint.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("webhook_id", Id, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(16), nullable=False),
    Column("source_id", BigInteger),
    Column("payload", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", SmallInteger, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    UniqueConstraint("webhook_id", "event", "source_id"),
    CheckConstraint(f"event IN {_in(WEBHOOK_EVENTS)}", name="event"),
    CheckConstraint(f"status IN {_in(DELIVERY_STATUSES)}", name="status"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "workspace_id", "created_at"),
)

__all__ = [
    "analytics_settings",
    "clicks",
    "complaints",
    "conversions",
    "coupons",
    "links",
    "metadata",
    "metric_alerts",
    "report_snapshots",
    "tracking_settings",
    "webhook_deliveries",
    "webhooks",
]
