"""Coupons: codes generated ahead of a send, redemption at the till, and the list a
shop loads into its point of sale.

A per-recipient coupon is issued by the planner (``CampaignTracking``) and tied to
the message that carried it; redeeming it credits that message with the order
(once per order, whatever else credits it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from echelon.db.outbox import campaigns
from echelon.db.tables import contacts
from echelon.db.tracking import coupons
from echelon.errors import EchelonError, InvalidInput, NotFound
from echelon.tracking import queries
from echelon.tracking.links import allocate_coupon_codes
from echelon.tracking.models import ConversionSource
from echelon.tracking.rules import normalise_coupon

MAX_GENERATED = 1_000_000


class CouponNotFound(NotFound):
    code = "coupon_not_found"

    def __init__(self, code: str) -> None:
        super().__init__(f"优惠券 {code} 不存在：请核对券码")


class CouponAlreadyRedeemed(EchelonError):
    code = "coupon_redeemed"
    http_status = 409

    def __init__(self, code: str, order_id: str | None, at: datetime) -> None:
        super().__init__(
            f"优惠券 {code} 已于 {at:%Y-%m-%d %H:%M}（UTC）核销（订单 {order_id}），不能重复使用"
        )


class CampaignNotFound(NotFound):
    code = "campaign_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"活动「{name}」不存在")


@dataclass(frozen=True, slots=True)
class Redemption:
    """A redeemed coupon; ``credited`` says whether this order was credited to the
    coupon's message now (False: no message, or the order was credited before)."""

    code: str
    order_id: str
    amount_fen: int
    redeemed_at: datetime
    campaign_id: int | None
    message_id: int | None
    credited: bool


def check_order(order_id: str, amount_fen: int) -> str:
    order = order_id.strip()
    if not order or len(order) > 64:
        raise InvalidInput("订单号须为 1–64 个字符")
    if amount_fen < 0:
        raise InvalidInput("订单金额不能为负数")
    return order


def campaign_id_by_name(conn: Connection, workspace_id: int, name: str) -> int:
    found = conn.execute(
        select(campaigns.c.id).where(
            campaigns.c.workspace_id == workspace_id, campaigns.c.name == name
        )
    ).scalar_one_or_none()
    if found is None:
        raise CampaignNotFound(name)
    return int(found)


def generate_coupons(
    engine: Engine, *, workspace_id: int, campaign: str, count: int, now: datetime
) -> list[str]:
    """``count`` new codes for ``campaign`` that belong to no recipient yet — for a
    shop to load into its till before the send, or hand out in store."""
    if not 1 <= count <= MAX_GENERATED:
        raise InvalidInput(f"一次可生成 1–{MAX_GENERATED} 张优惠券")
    with engine.begin() as conn:
        campaign_id = campaign_id_by_name(conn, workspace_id, campaign)
        codes = allocate_coupon_codes(conn, workspace_id, count)
        queries.insert_pool_coupons(
            conn, workspace_id=workspace_id, campaign_id=campaign_id, codes=codes, now=now
        )
    return codes


def campaign_coupons(
    engine: Engine, *, workspace_id: int, campaign: str
) -> Iterator[dict[str, Any]]:
    """Every coupon of ``campaign`` with its recipient and redemption, streamed."""
    c = coupons.c
    with engine.connect() as conn:
        campaign_id = campaign_id_by_name(conn, workspace_id, campaign)
        query = (
            select(
                c.code,
                contacts.c.phone,
                c.issued_at,
                c.redeemed_at,
                c.order_id,
                c.amount_fen,
            )
            .join_from(coupons, contacts, contacts.c.id == c.contact_id, isouter=True)
            .where(c.workspace_id == workspace_id, c.campaign_id == campaign_id)
            .order_by(c.id)
        )
        for row in conn.execution_options(yield_per=5_000).execute(query):
            yield dict(row._mapping)


def redeem_coupon(
    engine: Engine,
    *,
    workspace_id: int,
    code: str,
    order_id: str,
    amount_fen: int,
    now: datetime,
) -> Redemption:
    """Mark ``code`` used by the order and credit its message. Redeeming again with
    the same order is answered as before; with another order it is refused."""
    order = check_order(order_id, amount_fen)
    stored = normalise_coupon(code)
    with engine.begin() as conn:
        coupon = queries.coupon_by_code(conn, workspace_id, stored)
        if coupon is None:
            raise CouponNotFound(stored)
        if coupon["redeemed_at"] is not None:
            if coupon["order_id"] != order:
                raise CouponAlreadyRedeemed(stored, coupon["order_id"], coupon["redeemed_at"])
            return _redemption(coupon, credited=False)
        queries.mark_redeemed(conn, coupon["id"], order_id=order, amount_fen=amount_fen, at=now)
        credited = credit_coupon(
            conn,
            coupon,
            order_id=order,
            amount_fen=amount_fen,
            occurred_at=now,
            event_id=None,
            now=now,
        )
        coupon |= {"redeemed_at": now, "order_id": order, "amount_fen": amount_fen}
    return _redemption(coupon, credited=credited)


def credit_coupon(
    conn: Connection,
    coupon: dict[str, Any],
    *,
    order_id: str,
    amount_fen: int,
    occurred_at: datetime,
    event_id: int | None,
    now: datetime,
) -> bool:
    """Credit the order to the coupon's message, unless it has none or the order is
    credited already; whether it was credited now."""
    if coupon["message_id"] is None:
        return False
    return queries.insert_conversion(
        conn,
        {
            "workspace_id": coupon["workspace_id"],
            "order_id": order_id,
            "message_id": coupon["message_id"],
            "campaign_id": coupon["campaign_id"],
            "contact_id": coupon["contact_id"],
            "source": ConversionSource.COUPON.value,
            "amount_fen": amount_fen,
            "occurred_at": occurred_at,
            "coupon_id": coupon["id"],
            "event_id": event_id,
            "created_at": now,
        },
    )


def _redemption(coupon: dict[str, Any], *, credited: bool) -> Redemption:
    return Redemption(
        code=coupon["code"],
        order_id=coupon["order_id"],
        amount_fen=coupon["amount_fen"],
        redeemed_at=coupon["redeemed_at"],
        campaign_id=coupon["campaign_id"],
        message_id=coupon["message_id"],
        credited=credited,
    )
