"""tracking and analytics: short links, clicks, coupons, conversions, complaints,
metric thresholds and alerts, webhooks and their deliveries; the messages' A/B variant

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from echelon.db.types import Id, Json, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_settings",
        sa.Column("workspace_id", Id, autoincrement=False, nullable=False),
        sa.Column("thresholds", Json, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_analytics_settings_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_analytics_settings")),
    )
    op.create_table(
        "tracking_settings",
        sa.Column("workspace_id", Id, autoincrement=False, nullable=False),
        sa.Column("short_domain", sa.String(length=100), nullable=False),
        sa.Column("code_length", sa.SmallInteger(), nullable=False),
        sa.Column("click_window_s", sa.Integer(), nullable=False),
        sa.Column("delivery_window_s", sa.Integer(), nullable=False),
        sa.Column(
            "attributed_event_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_tracking_settings_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_tracking_settings")),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("events", Json, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("cursors", Json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_webhooks_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
        sa.UniqueConstraint("workspace_id", "url", name=op.f("uq_webhooks_workspace_id_url")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("webhook_id", Id, nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", Json, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "event IN ('receipt', 'reply', 'opt_out', 'click', 'conversion', 'test')",
            name=op.f("ck_webhook_deliveries_event"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_webhook_deliveries_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "webhook_id",
            "event",
            "source_id",
            name=op.f("uq_webhook_deliveries_webhook_id_event_source_id"),
        ),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_workspace_id_created_at"),
            ["workspace_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "report_snapshots",
        sa.Column("campaign_id", Id, autoincrement=False, nullable=False),
        sa.Column("grouping", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("outcomes", Json, nullable=False),
        sa.Column("followed_at", UTCDateTime(), nullable=True),
        sa.Column("follow_ups", Json, nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_report_snapshots_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_report_snapshots_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "grouping", name=op.f("pk_report_snapshots")),
    )
    op.create_table(
        "metric_alerts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("campaign_id", Id, nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("value_ppm", sa.Integer(), nullable=False),
        sa.Column("threshold_ppm", sa.Integer(), nullable=False),
        sa.Column("advice", sa.String(length=200), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_metric_alerts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_metric_alerts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_alerts")),
        sa.UniqueConstraint(
            "campaign_id", "metric", name=op.f("uq_metric_alerts_campaign_id_metric")
        ),
    )
    with op.batch_alter_table("metric_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_metric_alerts_workspace_id_raised_at"),
            ["workspace_id", "raised_at"],
            unique=False,
        )

    op.create_table(
        "complaints",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("complained_at", UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("campaign_id", Id, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_complaints_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_complaints_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_complaints_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint(
            "workspace_id",
            "phone",
            "complained_at",
            name=op.f("uq_complaints_workspace_id_phone_complained_at"),
        ),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_complaints_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_complaints_message_id"), ["message_id"], unique=False)

    op.create_table(
        "coupons",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("campaign_id", Id, nullable=True),
        sa.Column("contact_id", Id, nullable=True),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("redeemed_at", UTCDateTime(), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_coupons_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_coupons_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_coupons_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("workspace_id", "code", name=op.f("uq_coupons_workspace_id_code")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_message_id"), ["message_id"], unique=False)

    op.create_table(
        "links",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("campaign_id", Id, nullable=True),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("target_url", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_links_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_links_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_links_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint("code", name=op.f("uq_links_code")),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_links_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_links_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_links_message_id"), ["message_id"], unique=False)

    op.create_table(
        "clicks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("link_id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("campaign_id", Id, nullable=True),
        sa.Column("clicked_at", UTCDateTime(), nullable=False),
        sa.Column("human", sa.Boolean(), nullable=False),
        sa.Column("bot_reason", sa.String(length=8), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("ip_hash", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "bot_reason IN ('head', 'agent', 'repeat')", name=op.f("ck_clicks_bot_reason")
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("fk_clicks_link_id_links"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clicks")),
    )
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clicks_campaign_id_message_id"),
            ["campaign_id", "message_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_clicks_contact_id_clicked_at"),
            ["contact_id", "clicked_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_clicks_link_id"), ["link_id"], unique=False)

    op.create_table(
        "conversions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", Id, nullable=False),
        sa.Column("campaign_id", Id, nullable=True),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("coupon_id", Id, nullable=True),
        sa.Column("event_id", Id, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "source IN ('coupon', 'click', 'delivery')", name=op.f("ck_conversions_source")
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_conversions_coupon_id_coupons"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_conversions_event_id_events"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_conversions_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_conversions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversions")),
        sa.UniqueConstraint(
            "workspace_id", "order_id", name=op.f("uq_conversions_workspace_id_order_id")
        ),
    )
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversions_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_conversions_coupon_id"), ["coupon_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversions_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversions_message_id"), ["message_id"], unique=False)

    # Plain ADD COLUMN: no rebuild of the outbox on SQLite.
    op.add_column("messages", sa.Column("variant", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("variant")

    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversions_message_id"))
        batch_op.drop_index(batch_op.f("ix_conversions_event_id"))
        batch_op.drop_index(batch_op.f("ix_conversions_coupon_id"))
        batch_op.drop_index(batch_op.f("ix_conversions_campaign_id"))

    op.drop_table("conversions")
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clicks_link_id"))
        batch_op.drop_index(batch_op.f("ix_clicks_contact_id_clicked_at"))
        batch_op.drop_index(batch_op.f("ix_clicks_campaign_id_message_id"))

    op.drop_table("clicks")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_links_message_id"))
        batch_op.drop_index(batch_op.f("ix_links_contact_id"))
        batch_op.drop_index(batch_op.f("ix_links_campaign_id"))

    op.drop_table("links")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_message_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_contact_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_campaign_id"))

    op.drop_table("coupons")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaints_message_id"))
        batch_op.drop_index(batch_op.f("ix_complaints_campaign_id"))

    op.drop_table("complaints")
    with op.batch_alter_table("metric_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metric_alerts_workspace_id_raised_at"))

    op.drop_table("metric_alerts")
    op.drop_table("report_snapshots")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_workspace_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_status_next_attempt_at"))

    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("tracking_settings")
    op.drop_table("analytics_settings")
