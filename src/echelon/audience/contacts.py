"""Contacts: one per number per workspace, with what the number and the business tell."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, exists, func, select

from echelon.audience.consent import consent_history
from echelon.audience.phone import Carrier, normalise_phone
from echelon.db.tables import consents, contact_tags, contacts, events, suppressions
from echelon.errors import NotFound

_EXPORT_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class EventSummary:
    type: str
    occurred_at: datetime
    amount_fen: int | None
    order_id: str | None
    category: str | None


@dataclass(frozen=True)
class ContactProfile:
    id: int
    phone: str
    name: str | None
    gender: str | None
    birthday: date | None
    birthday_lunar: bool
    province: str | None
    city: str | None
    carrier: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    tags: list[str] = field(default_factory=list)
    consents: list[Any] = field(default_factory=list)
    suppressions: list[str] = field(default_factory=list)
    recent_events: list[EventSummary] = field(default_factory=list)


def get_contact(engine: Engine, *, workspace_id: int, phone: str) -> ContactProfile:
    number = normalise_phone(phone)
    with engine.connect() as conn:
        row = conn.execute(
            select(contacts).where(
                contacts.c.workspace_id == workspace_id, contacts.c.phone == number
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"联系人 {number} 不存在")
        profile = ContactProfile(**{k: v for k, v in row._mapping.items() if k != "workspace_id"})
        profile.tags.extend(
            conn.execute(
                select(contact_tags.c.tag)
                .where(contact_tags.c.contact_id == row.id)
                .order_by(contact_tags.c.tag)
            ).scalars()
        )
        profile.consents.extend(consent_history(conn, row.id))
        profile.suppressions.extend(
            conn.execute(
                select(suppressions.c.kind)
                .where(suppressions.c.workspace_id == workspace_id, suppressions.c.phone == number)
                .order_by(suppressions.c.kind)
            ).scalars()
        )
        profile.recent_events.extend(
            EventSummary(*r)
            for r in conn.execute(
                select(
                    events.c.type,
                    events.c.occurred_at,
                    events.c.amount_fen,
                    events.c.order_id,
                    events.c.category,
                )
                .where(events.c.workspace_id == workspace_id, events.c.contact_id == row.id)
                .order_by(events.c.occurred_at.desc())
                .limit(20)
            )
        )
    return profile


def _marketing_consent(workspace_id: int) -> Any:
    return exists().where(
        consents.c.workspace_id == workspace_id,
        consents.c.contact_id == contacts.c.id,
        consents.c.purpose == "marketing",
        consents.c.revoked_at.is_(None),
    )


def _suppressed(workspace_id: int) -> Any:
    return exists().where(
        suppressions.c.workspace_id == workspace_id, suppressions.c.phone == contacts.c.phone
    )


def count_contacts(engine: Engine, *, workspace_id: int) -> dict[str, Any]:
    """Totals a marketer checks before a send: all, consenting, suppressed, by carrier."""
    mine = contacts.c.workspace_id == workspace_id
    with engine.connect() as conn:
        total, consenting, suppressed, reachable = conn.execute(
            select(
                func.count(),
                func.count().filter(_marketing_consent(workspace_id)),
                func.count().filter(_suppressed(workspace_id)),
                func.count().filter(
                    and_(_marketing_consent(workspace_id), ~_suppressed(workspace_id))
                ),
            ).where(mine)
        ).one()
        by_carrier = {
            (carrier or "unknown"): n
            for carrier, n in conn.execute(
                select(contacts.c.carrier, func.count()).where(mine).group_by(contacts.c.carrier)
            )
        }
    return {
        "total": total,
        "marketing_consent": consenting,
        "suppressed": suppressed,
        "marketing_reachable": reachable,
        "by_carrier": by_carrier,
    }


EXPORT_COLUMNS = (
    "phone",
    "name",
    "gender",
    "birthday",
    "birthday_lunar",
    "province",
    "city",
    "carrier",
    "tags",
    "marketing_consent",
    "created_at",
)


def export_contacts(
    engine: Engine,
    *,
    workspace_id: int,
    path: Path,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write every contact to a CSV that ``contacts import`` reads back; the row count."""
    tags = (
        (
            select(func.group_concat(contact_tags.c.tag, "|"))
            if engine.dialect.name == "sqlite"
            else select(func.string_agg(contact_tags.c.tag, "|"))
        )
        .where(contact_tags.c.contact_id == contacts.c.id)
        .scalar_subquery()
    )
    query = (
        select(
            contacts.c.phone,
            contacts.c.name,
            contacts.c.gender,
            contacts.c.birthday,
            contacts.c.birthday_lunar,
            contacts.c.province,
            contacts.c.city,
            contacts.c.carrier,
            tags,
            _marketing_consent(workspace_id),
            contacts.c.created_at,
        )
        .where(contacts.c.workspace_id == workspace_id)
        .order_by(contacts.c.id)
    )
    written = 0
    with engine.connect() as conn, path.open("w", encoding="utf-8-sig", newline="") as handle:
        total = conn.execute(
            select(func.count()).where(contacts.c.workspace_id == workspace_id)
        ).scalar_one()
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        result = conn.execution_options(yield_per=_EXPORT_BATCH).execute(query)
        for partition in result.partitions():
            writer.writerows(_export_row(row) for row in partition)
            written += len(partition)
            if progress:
                progress(len(partition), total)
    return written


def _export_row(row: Any) -> list[Any]:
    values = list(row)
    values[4] = "是" if values[4] else ""
    values[7] = Carrier(values[7]).label if values[7] else ""
    values[9] = "是" if values[9] else "否"
    values[10] = values[10].isoformat() if isinstance(values[10], datetime) else values[10]
    return ["" if v is None else v for v in values]
