"""Contacts and events as JSON records (the HTTP API's path): bulk upsert and batched
event ingestion through the import's staging tables and parsers, search by page, and
erasure of a person's data.

A record is read exactly as the same values in an import file would be (the import's
parsers), so the API and a spreadsheet never disagree. A bad record never stops a
batch: it is reported with its index and reason and the good ones go in, in one
transaction per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, func, or_, select

from echelon.audience import queries
from echelon.audience.fields import Cell
from echelon.audience.importing import _contact_parser, _event_parser
from echelon.audience.lists import ensure_list
from echelon.audience.phone import normalise_phone
from echelon.db.bulk import create_staging, drop_staging, load_staging
from echelon.db.outbox import messages, receipts, replies
from echelon.db.tables import contact_tags, contacts, suppressions, workspaces
from echelon.db.tracking import clicks, complaints
from echelon.errors import InvalidInput, NotFound

MAX_RECORDS: Final = 10_000
_CONTACT_FIELDS: Final = (
    "phone",
    "name",
    "gender",
    "birthday",
    "birthday_lunar",
    "province",
    "city",
    "tags",
    "consent",
    "consent_at",
    "consent_proof",
)
_EVENT_FIELDS: Final = (
    "phone",
    "type",
    "occurred_at",
    "amount",
    "order_id",
    "category",
    "coupon_code",
    "event_id",
)
_CONTACT_STAGING = (queries.staged_contacts, queries.staged_tags, queries.staged_ids)


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int  # the record's position in the request, from 0
    reason: str


@dataclass
class BatchReport:
    """What a batch did; ``rejected`` names each refused record by index and reason."""

    received: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContactSummary:
    id: int
    phone: str
    name: str | None
    gender: str | None
    province: str | None
    city: str | None
    carrier: str | None
    created_at: datetime
    updated_at: datetime


def upsert_contacts(
    engine: Engine,
    *,
    workspace_id: int,
    records: Sequence[Mapping[str, Any]],
    consent_source: str | None,
    list_name: str | None,
    now: datetime,
) -> BatchReport:
    """Create or update up to 10,000 contacts by phone (a field not given keeps its
    value). Marketing consent is granted only to records saying ``consent: true``, and
    only with ``consent_source`` naming where it came from; a revoked consent is never
    brought back this way. ``list_name`` adds every contact to that list."""
    _check_size(records)
    if consent_source is not None and not 1 <= len(consent_source.strip()) <= 64:
        raise InvalidInput("同意来源须为 1–64 个字，如 checkout_checkbox")
    if consent_source is None and any(r.get("consent") is not None for r in records):
        raise InvalidInput("记录含有营销同意：请用 consent_source 说明同意从何而来")
    zone = _zone(engine, workspace_id)
    fields = {name: i for i, name in enumerate(_CONTACT_FIELDS)}
    report = BatchReport(received=len(records))

    def cells(record: Mapping[str, Any]) -> tuple[list[Cell], dict[str, int]]:
        values: list[Cell] = [_cell(record.get(name)) for name in _CONTACT_FIELDS]
        tags = record.get("tags")
        values[fields["tags"]] = "|".join(tags) if tags else None
        if consent_source is not None and record.get("consent") is None:
            values[fields["consent"]] = False  # only an explicit true grants
        return _with_extra(values, record.get("attributes"))

    parsed = _parse(records, cells, lambda others: _contact_parser(fields, others, zone), report)
    unique: list[tuple[tuple[Any, ...], list[str]]] = []
    seen: set[str] = set()
    for staged, tags in parsed:
        if staged[0] in seen:
            report.duplicates += 1
            continue
        seen.add(staged[0])
        unique.append((staged, tags))
    counts = dict.fromkeys(("tags_added", "consent_granted", "consent_withheld"), 0)
    with engine.begin() as conn:
        list_id = ensure_list(conn, workspace_id, list_name, now)
        for table in _CONTACT_STAGING:
            create_staging(conn, table)
        load_staging(conn, queries.staged_contacts, [staged for staged, _ in unique])
        load_staging(conn, queries.staged_tags, [(s[0], t) for s, tags in unique for t in tags])
        queries.resolve_existing_contacts(conn, workspace_id)
        report.updated = queries.update_staged_contacts(conn, workspace_id, now)
        report.imported = queries.insert_staged_contacts(conn, workspace_id, now)
        report.unchanged = len(unique) - report.imported - report.updated
        counts["tags_added"] = queries.insert_staged_tags(conn, workspace_id)
        if consent_source is not None:
            granted, withheld = queries.grant_staged_consent(
                conn, workspace_id, source=consent_source.strip(), proof=None, now=now
            )
            counts["consent_granted"], counts["consent_withheld"] = granted, withheld
        if list_id is not None:
            counts["list_members_added"] = queries.insert_staged_list_members(
                conn, workspace_id, list_id
            )
        for table in _CONTACT_STAGING:
            drop_staging(conn, table)
    report.extra = counts
    return report


def record_events(
    engine: Engine,
    *,
    workspace_id: int,
    records: Sequence[Mapping[str, Any]],
    now: datetime,
) -> BatchReport:
    """Store up to 10,000 events (purchases, cart adds …); one already stored — by its
    ``event_id``, or else by its content — is a duplicate and changes nothing. A number
    first seen here becomes a contact without consent of any kind."""
    _check_size(records)
    zone = _zone(engine, workspace_id)
    fields = {name: i for i, name in enumerate(_EVENT_FIELDS)}
    report = BatchReport(received=len(records))

    def cells(record: Mapping[str, Any]) -> tuple[list[Cell], dict[str, int]]:
        values: list[Cell] = [_cell(record.get(name)) for name in _EVENT_FIELDS]
        return _with_extra(values, record.get("properties"))

    parsed = _parse(records, cells, lambda others: _event_parser(fields, others, zone), report)
    unique = {row[0]: row for row in parsed}
    with engine.begin() as conn:
        create_staging(conn, queries.staged_events)
        load_staging(conn, queries.staged_events, list(unique.values()))
        created = queries.insert_event_contacts(conn, workspace_id, now)
        report.imported = queries.insert_staged_events(conn, workspace_id, now)
        drop_staging(conn, queries.staged_events)
    report.duplicates = len(parsed) - report.imported
    report.extra = {"contacts_created": created}
    return report


def search_contacts(
    engine: Engine,
    *,
    workspace_id: int,
    text: str | None = None,
    tag: str | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[ContactSummary]:
    """Contacts whose number or name contains ``text`` and/or that carry ``tag``, by id
    above ``after_id``: pass the last id back for the next page."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("每页条数须在 1–1000 之间")
    c = contacts.c
    query = (
        select(
            c.id,
            c.phone,
            c.name,
            c.gender,
            c.province,
            c.city,
            c.carrier,
            c.created_at,
            c.updated_at,
        )
        .where(c.workspace_id == workspace_id, c.id > after_id)
        .order_by(c.id)
        .limit(limit)
    )
    if text is not None and text.strip():
        pattern = "%" + _escape_like(text.strip()) + "%"
        query = query.where(
            or_(c.phone.like(pattern, escape="\\"), c.name.like(pattern, escape="\\"))
        )
    if tag is not None:
        query = query.where(
            select(contact_tags.c.tag)
            .where(contact_tags.c.contact_id == c.id, contact_tags.c.tag == tag)
            .exists()
        )
    with engine.connect() as conn:
        return [ContactSummary(*row) for row in conn.execute(query)]


def erase_contact(engine: Engine, *, workspace_id: int, phone: str) -> dict[str, int]:
    """Erase a person: the contact with its tags, list memberships, consents, events,
    messages and their receipts, clicks, replies and complaints. Only suppressions
    stay — they are what keeps the number from ever being messaged again."""
    number = normalise_phone(phone)
    with engine.begin() as conn:
        contact_id = conn.execute(
            select(contacts.c.id).where(
                contacts.c.workspace_id == workspace_id, contacts.c.phone == number
            )
        ).scalar_one_or_none()
        if contact_id is None:
            raise NotFound(f"联系人 {number} 不存在")
        erased = _erase(conn, workspace_id, contact_id, number)
    return erased


def _erase(conn: Connection, workspace_id: int, contact_id: int, number: str) -> dict[str, int]:
    erased = {
        "replies": conn.execute(
            delete(replies).where(replies.c.workspace_id == workspace_id, replies.c.phone == number)
        ).rowcount,
        "clicks": conn.execute(
            delete(clicks).where(
                clicks.c.workspace_id == workspace_id, clicks.c.contact_id == contact_id
            )
        ).rowcount,
        "complaints": conn.execute(
            delete(complaints).where(
                complaints.c.workspace_id == workspace_id, complaints.c.phone == number
            )
        ).rowcount,
        # Receipts name the number: those of its messages (no foreign key ties them to
        # the messages since migration 0014, so they do not go with them by themselves),
        # and those never matched to a message.
        "receipts": conn.execute(
            delete(receipts).where(
                receipts.c.message_id.in_(
                    select(messages.c.id).where(
                        messages.c.workspace_id == workspace_id,
                        messages.c.contact_id == contact_id,
                    )
                )
            )
        ).rowcount,
        "unmatched_receipts": conn.execute(
            delete(receipts).where(
                receipts.c.workspace_id == workspace_id,
                receipts.c.destination == number,
                receipts.c.message_id.is_(None),
            )
        ).rowcount,
    }
    # The rest hangs off the contact and goes with it (ON DELETE CASCADE).
    erased["contacts"] = conn.execute(
        delete(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.id == contact_id)
    ).rowcount
    erased["suppressions_kept"] = conn.execute(
        select(func.count()).where(
            suppressions.c.workspace_id == workspace_id, suppressions.c.phone == number
        )
    ).scalar_one()
    return erased


def _zone(engine: Engine, workspace_id: int) -> ZoneInfo:
    """The workspace's zone: times written without one are read in it."""
    with engine.connect() as conn:
        name = conn.execute(
            select(workspaces.c.timezone).where(workspaces.c.id == workspace_id)
        ).scalar_one()
    return ZoneInfo(name)


def _check_size(records: Sequence[Mapping[str, Any]]) -> None:
    if not 1 <= len(records) <= MAX_RECORDS:
        raise InvalidInput(f"每次须提交 1–{MAX_RECORDS} 条记录，收到 {len(records)} 条")


def _cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def _with_extra(
    values: list[Cell], extra: Mapping[str, Any] | None
) -> tuple[list[Cell], dict[str, int]]:
    """Cells with custom attributes (or event properties) appended, and where each is."""
    others: dict[str, int] = {}
    for name, value in (extra or {}).items():
        others[name] = len(values)
        values.append(_cell(value))
    return values, others


def _parse(
    records: Sequence[Mapping[str, Any]],
    cells: Callable[[Mapping[str, Any]], tuple[list[Cell], dict[str, int]]],
    parser: Callable[[dict[str, int]], Callable[[list[Cell]], Any]],
    report: BatchReport,
) -> list[Any]:
    parsed = []
    for index, record in enumerate(records):
        row, others = cells(record)
        try:
            parsed.append(parser(others)(row))
        except InvalidInput as exc:
            report.rejected.append(Rejected(index, exc.message))
    return parsed


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
