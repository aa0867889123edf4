"""SQL of tracking: code collisions, issuing links and coupons in bulk, the redirect's
lookup, click rows, and what attribution reads."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from echelon.db.bulk import clear_staging, copy_rows, create_staging, load_staging
from echelon.db.outbox import messages
from echelon.db.tables import events, workspaces
from echelon.db.tracking import clicks, conversions, coupons, links, tracking_settings
from echelon.tracking.models import Touch

_staging = MetaData()

staged_links = Table(
    "staged_links",
    _staging,
    Column("code", String(8), primary_key=True),
    Column("contact_id", BigInteger, nullable=False),
    Column("target_url", Text, nullable=False),
    prefixes=["TEMPORARY"],
)

staged_coupons = Table(
    "staged_coupons",
    _staging,
    Column("code", String(16), primary_key=True),
    Column("contact_id", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)

CLICK_COLUMNS = (
    "workspace_id",
    "link_id",
    "message_id",
    "contact_id",
    "campaign_id",
    "clicked_at",
    "human",
    "bot_reason",
    "user_agent",
    "ip_hash",
)


def taken_link_codes(conn: Connection, codes: Collection[str]) -> set[str]:
    """Which of ``codes`` some link already has (in any workspace)."""
    return set(conn.execute(select(links.c.code).where(links.c.code.in_(codes))).scalars())


def taken_coupon_codes(conn: Connection, workspace_id: int, codes: Collection[str]) -> set[str]:
    query = select(coupons.c.code).where(
        coupons.c.workspace_id == workspace_id, coupons.c.code.in_(codes)
    )
    return set(conn.execute(query).scalars())


def _campaign_message(workspace_id: int, campaign_id: int | None, contact_id: Any) -> Any:
    """The message of the campaign to the contact (the latest if there are several):
    probed through the contact's index, one lookup per row."""
    if campaign_id is None:
        return literal(None, BigInteger)
    m = messages.c
    return (
        select(m.id)
        .where(
            m.contact_id == contact_id,
            m.campaign_id == campaign_id,
            m.workspace_id == workspace_id,
        )
        .order_by(m.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def start_staging(conn: Connection) -> None:
    create_staging(conn, staged_links)
    create_staging(conn, staged_coupons)


def insert_links(
    conn: Connection,
    *,
    workspace_id: int,
    campaign_id: int | None,
    rows: Sequence[tuple[str, int, str]],
    now: datetime,
) -> None:
    """Store (code, contact id, target) links, each tied to its campaign message."""
    if not rows:
        return
    load_staging(conn, staged_links, rows)
    s = staged_links.c
    selected = select(
        literal(workspace_id, BigInteger),
        s.code,
        s.contact_id,
        literal(campaign_id, BigInteger),
        _campaign_message(workspace_id, campaign_id, s.contact_id),
        s.target_url,
        literal(now, links.c.created_at.type),
    )
    conn.execute(
        insert(links).from_select(
            [
                "workspace_id",
                "code",
                "contact_id",
                "campaign_id",
                "message_id",
                "target_url",
                "created_at",
            ],
            selected,
        )
    )
    clear_staging(conn, staged_links)


def insert_coupons(
    conn: Connection,
    *,
    workspace_id: int,
    campaign_id: int | None,
    rows: Sequence[tuple[str, int]],
    now: datetime,
) -> None:
    """Store (code, contact id) coupons, each tied to its campaign message."""
    if not rows:
        return
    load_staging(conn, staged_coupons, rows)
    s = staged_coupons.c
    selected = select(
        literal(workspace_id, BigInteger),
        s.code,
        literal(campaign_id, BigInteger),
        s.contact_id,
        _campaign_message(workspace_id, campaign_id, s.contact_id),
        literal(now, coupons.c.issued_at.type),
    )
    conn.execute(
        insert(coupons).from_select(
            ["workspace_id", "code", "campaign_id", "contact_id", "message_id", "issued_at"],
            selected,
        )
    )
    clear_staging(conn, staged_coupons)


def replace_in_text(
    conn: Connection,
    *,
    workspace_id: int,
    campaign_id: int | None,
    contact_id: int,
    old: str,
    new: str,
    now: datetime,
) -> None:
    """Swap a code in the campaign message's stored text for one of the same length.
    (``text_hash`` stays: the gate compares texts by it, and a code never repeats.)"""
    m = messages.c
    conn.execute(
        update(messages)
        .where(
            m.workspace_id == workspace_id,
            m.contact_id == contact_id,
            m.campaign_id == campaign_id,
        )
        .values(text=func.replace(m.text, old, new), updated_at=now)
    )


def insert_pool_coupons(
    conn: Connection,
    *,
    workspace_id: int,
    campaign_id: int,
    codes: Sequence[str],
    now: datetime,
) -> None:
    copy_rows(
        conn,
        coupons,
        ("workspace_id", "code", "campaign_id", "issued_at"),
        [(workspace_id, code, campaign_id, now) for code in codes],
    )


def link_targets_sql(dialect: str) -> str:
    """The redirect's lookup of many codes at once as driver SQL: ``code`` then the
    ``LinkTarget`` fields. One parameter holds the codes — a list on PostgreSQL, a JSON
    array on SQLite — so the statement is the same for any number. It runs on a raw
    connection, the one hot read that skips SQLAlchemy."""
    columns = "code, id, workspace_id, contact_id, campaign_id, message_id, target_url"
    if dialect == "postgresql":
        return f"SELECT {columns} FROM links WHERE code = ANY(%s)"
    return f"SELECT {columns} FROM links WHERE code IN (SELECT value FROM json_each(?))"


def insert_clicks(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    copy_rows(conn, clicks, CLICK_COLUMNS, rows)


def existing_links(conn: Connection, link_ids: Collection[int]) -> set[int]:
    return set(conn.execute(select(links.c.id).where(links.c.id.in_(link_ids))).scalars())


def purchases_after(
    conn: Connection, workspace_id: int, after_id: int, limit: int
) -> list[dict[str, Any]]:
    e = events.c
    query = (
        select(
            e.id, e.contact_id, e.occurred_at, e.amount_fen, e.order_id, e.coupon_code, e.event_key
        )
        .where(e.workspace_id == workspace_id, e.type == "purchase", e.id > after_id)
        .order_by(e.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def human_clicks(
    conn: Connection, workspace_id: int, contact_ids: Collection[int], since: datetime
) -> dict[int, list[Touch]]:
    """Each contact's human clicks on sent messages since ``since``."""
    c = clicks.c
    query = select(c.contact_id, c.message_id, c.campaign_id, c.clicked_at).where(
        c.workspace_id == workspace_id,
        c.contact_id.in_(contact_ids),
        c.clicked_at >= since,
        c.human.is_(True),
        c.message_id.is_not(None),
    )
    found: dict[int, list[Touch]] = {}
    for contact_id, message_id, campaign_id, at in conn.execute(query):
        found.setdefault(contact_id, []).append(Touch(message_id, campaign_id, at))
    return found


def deliveries(
    conn: Connection, workspace_id: int, contact_ids: Collection[int], since: datetime
) -> dict[int, list[Touch]]:
    """Each contact's messages delivered since ``since``."""
    m = messages.c
    query = select(m.contact_id, m.id, m.campaign_id, m.done_at).where(
        m.workspace_id == workspace_id,
        m.contact_id.in_(contact_ids),
        m.status == "delivered",
        m.done_at >= since,
    )
    found: dict[int, list[Touch]] = {}
    for contact_id, message_id, campaign_id, at in conn.execute(query):
        found.setdefault(contact_id, []).append(Touch(message_id, campaign_id, at))
    return found


def coupon_by_code(conn: Connection, workspace_id: int, code: str) -> dict[str, Any] | None:
    """The coupon, locked for the caller's transaction (PostgreSQL; SQLite's is already)."""
    row = conn.execute(
        select(coupons)
        .where(coupons.c.workspace_id == workspace_id, coupons.c.code == code)
        .with_for_update()
    ).one_or_none()
    return None if row is None else dict(row._mapping)


def coupons_by_code(
    conn: Connection, workspace_id: int, codes: Collection[str]
) -> dict[str, dict[str, Any]]:
    query = select(coupons).where(coupons.c.workspace_id == workspace_id, coupons.c.code.in_(codes))
    return {row.code: dict(row._mapping) for row in conn.execute(query)}


def mark_redeemed(
    conn: Connection, coupon_id: int, *, order_id: str, amount_fen: int, at: datetime
) -> None:
    conn.execute(
        update(coupons)
        .where(coupons.c.id == coupon_id)
        .values(redeemed_at=at, order_id=order_id, amount_fen=amount_fen)
    )


def credited_orders(conn: Connection, workspace_id: int, order_ids: Collection[str]) -> set[str]:
    query = select(conversions.c.order_id).where(
        conversions.c.workspace_id == workspace_id, conversions.c.order_id.in_(order_ids)
    )
    return set(conn.execute(query).scalars())


def insert_conversion(conn: Connection, values: dict[str, Any]) -> bool:
    """Credit an order unless it already is (one order, one credit); whether it was."""
    statement = _dialect_insert(conn, conversions).values(**values)
    done = conn.execute(
        statement.on_conflict_do_nothing(index_elements=["workspace_id", "order_id"])
    )
    return bool(done.rowcount)


def _dialect_insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def attribution_cursor(conn: Connection, workspace_id: int) -> int:
    found = conn.execute(
        select(tracking_settings.c.attributed_event_id).where(
            tracking_settings.c.workspace_id == workspace_id
        )
    ).scalar_one_or_none()
    return int(found or 0)


def move_attribution_cursor(
    conn: Connection, workspace_id: int, event_id: int, defaults: dict[str, Any], now: datetime
) -> None:
    t = tracking_settings.c
    moved = conn.execute(
        update(tracking_settings)
        .where(t.workspace_id == workspace_id)
        .values(attributed_event_id=event_id)
    ).rowcount
    if not moved:
        conn.execute(
            insert(tracking_settings).values(
                workspace_id=workspace_id, attributed_event_id=event_id, updated_at=now, **defaults
            )
        )


def workspace_ids(conn: Connection) -> list[int]:
    return list(conn.execute(select(workspaces.c.id).order_by(workspaces.c.id)).scalars())
