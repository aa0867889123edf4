"""Conversions from purchase events: each purchase credited to the message that earned it.

In order: the coupon the purchase used (if it is one of ours), else the last message
the contact clicked within the click window before buying, else the last message
delivered to them within the delivery window (``rules.attribute``). An order is
credited once whichever way comes first — a redemption call, or its purchase event.
Events are read in id order from a per-workspace cursor, a batch per transaction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from echelon.tracking import queries
from echelon.tracking.coupons import credit_coupon
from echelon.tracking.models import TrackingSettings
from echelon.tracking.rules import attribute, normalise_coupon
from echelon.tracking.settings import settings_in

BATCH = 1_000


@dataclass
class AttributionSummary:
    """Purchases examined and how many were credited, by rule."""

    examined: int = 0
    credited: Counter[str] = field(default_factory=Counter)
    already_credited: int = 0


def order_of(event: dict[str, Any]) -> str:
    """The order a purchase event stands for: its order id, else the event itself."""
    order = (event["order_id"] or "").strip()
    return order or f"event:{event['event_key']}"[:64]


def attribute_purchases(
    engine: Engine, *, workspace_id: int, now: datetime, batch: int = BATCH
) -> AttributionSummary:
    """Credit every purchase event not examined yet; one transaction per batch."""
    summary = AttributionSummary()
    while True:
        with engine.begin() as conn:
            settings = settings_in(conn, workspace_id=workspace_id)
            cursor = queries.attribution_cursor(conn, workspace_id)
            purchases = queries.purchases_after(conn, workspace_id, cursor, batch)
            if not purchases:
                return summary
            _attribute_batch(conn, workspace_id, settings, purchases, summary, now)
            queries.move_attribution_cursor(
                conn, workspace_id, purchases[-1]["id"], _stored(settings), now
            )


def _attribute_batch(
    conn: Connection,
    workspace_id: int,
    settings: TrackingSettings,
    purchases: list[dict[str, Any]],
    summary: AttributionSummary,
    now: datetime,
) -> None:
    summary.examined += len(purchases)
    orders = {order_of(p) for p in purchases}
    done = queries.credited_orders(conn, workspace_id, orders)
    codes = {normalise_coupon(p["coupon_code"]) for p in purchases if p["coupon_code"]}
    coupons = queries.coupons_by_code(conn, workspace_id, codes) if codes else {}
    contacts = {p["contact_id"] for p in purchases}
    first = min(p["occurred_at"] for p in purchases)
    clicks = queries.human_clicks(conn, workspace_id, contacts, first - settings.click_window)
    delivered = queries.deliveries(conn, workspace_id, contacts, first - settings.delivery_window)
    for purchase in purchases:
        order = order_of(purchase)
        if order in done:
            summary.already_credited += 1
            continue
        amount = max(purchase["amount_fen"] or 0, 0)
        coupon = coupons.get(normalise_coupon(purchase["coupon_code"] or ""))
        if coupon is not None and coupon["redeemed_at"] is None:
            queries.mark_redeemed(
                conn, coupon["id"], order_id=order, amount_fen=amount, at=purchase["occurred_at"]
            )
            coupon["redeemed_at"] = purchase["occurred_at"]
            if credit_coupon(
                conn,
                coupon,
                order_id=order,
                amount_fen=amount,
                occurred_at=purchase["occurred_at"],
                event_id=purchase["id"],
                now=now,
            ):
                summary.credited["coupon"] += 1
                done.add(order)
                continue
        credit = attribute(
            purchase["occurred_at"],
            clicks=clicks.get(purchase["contact_id"], ()),
            deliveries=delivered.get(purchase["contact_id"], ()),
            click_window=settings.click_window,
            delivery_window=settings.delivery_window,
        )
        if credit is None:
            continue
        if queries.insert_conversion(
            conn,
            {
                "workspace_id": workspace_id,
                "order_id": order,
                "message_id": credit.touch.message_id,
                "campaign_id": credit.touch.campaign_id,
                "contact_id": purchase["contact_id"],
                "source": credit.source.value,
                "amount_fen": amount,
                "occurred_at": purchase["occurred_at"],
                "coupon_id": None,
                "event_id": purchase["id"],
                "created_at": now,
            },
        ):
            summary.credited[credit.source.value] += 1
        done.add(order)


def _stored(settings: TrackingSettings) -> dict[str, Any]:
    return {
        "short_domain": settings.short_domain,
        "code_length": settings.code_length,
        "click_window_s": int(settings.click_window.total_seconds()),
        "delivery_window_s": int(settings.delivery_window.total_seconds()),
    }


def attribute_all(engine: Engine, *, now: datetime) -> dict[int, AttributionSummary]:
    """``attribute_purchases`` for every workspace (a worker's periodic pass); the
    summaries of those that had purchases to examine."""
    with engine.connect() as conn:
        workspace_ids = queries.workspace_ids(conn)
    summaries = {}
    for workspace_id in workspace_ids:
        summary = attribute_purchases(engine, workspace_id=workspace_id, now=now)
        if summary.examined:
            summaries[workspace_id] = summary
    return summaries
