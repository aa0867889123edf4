"""SQL of the audience package: the staging tables of imports and the set-based
statements that move staged rows into contacts, tags, consent, lists and events.

Every statement is scoped to one workspace.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)

from echelon.audience.phone import describe_phone
from echelon.db.bulk import copy_rows
from echelon.db.tables import (
    consents,
    contact_list_members,
    contact_tags,
    contacts,
    events,
    suppressions,
)

_staging = MetaData()

staged_contacts = Table(
    "staged_contacts",
    _staging,
    Column("phone", String(20), primary_key=True),
    Column("name", String(100)),
    Column("gender", String(8)),
    Column("birthday", Date),
    Column("birthday_lunar", Boolean),
    Column("province", String(32)),
    Column("city", String(32)),
    Column("derived_province", String(32)),
    Column("derived_city", String(32)),
    Column("carrier", String(16)),
    Column("attributes", Text),
    Column("consent", Boolean),
    Column("consent_at", DateTime(timezone=True)),
    Column("consent_proof", String(500)),
    prefixes=["TEMPORARY"],
)

staged_tags = Table(
    "staged_tags",
    _staging,
    Column("phone", String(20), primary_key=True),
    Column("tag", String(64), primary_key=True),
    prefixes=["TEMPORARY"],
)

# The contact id of each staged number, found once per batch: every later statement
# joins this small table instead of looking the number up again.
staged_ids = Table(
    "staged_ids",
    _staging,
    Column("phone", String(20), primary_key=True),
    Column("contact_id", BigInteger, nullable=False),
    Column("created", Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)

staged_events = Table(
    "staged_events",
    _staging,
    Column("event_key", String(64), primary_key=True),
    Column("phone", String(20), nullable=False),
    Column("derived_province", String(32)),
    Column("derived_city", String(32)),
    Column("carrier", String(16)),
    Column("type", String(32), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("amount_fen", BigInteger),
    Column("order_id", String(64)),
    Column("category", String(64)),
    Column("coupon_code", String(64)),
    Column("properties", Text),
    prefixes=["TEMPORARY"],
)

staged_phones = Table(
    "staged_phones",
    _staging,
    Column("phone", String(20), primary_key=True),
    Column("reason", String(500)),
    Column("row_number", Integer),
    prefixes=["TEMPORARY"],
)


def _json(conn: Connection, column: ColumnElement[str]) -> ColumnElement[object]:
    if conn.dialect.name == "postgresql":
        return func.cast(column, contacts.c.attributes.type)
    return func.json(column)


def _merged_attributes(conn: Connection, staged: ColumnElement[str]) -> ColumnElement[object]:
    if conn.dialect.name == "postgresql":
        return contacts.c.attributes.op("||")(_json(conn, staged))
    return func.json_patch(contacts.c.attributes, staged)


def _changed(new: ColumnElement[object], old: ColumnElement[object]) -> ColumnElement[bool]:
    return and_(new.is_not(None), new.is_distinct_from(old))


def resolve_existing_contacts(conn: Connection, workspace_id: int) -> None:
    """Note the id of every staged number that is already a contact: the one lookup
    per staged row; every later statement of the batch joins ``staged_ids``."""
    s = staged_contacts.c
    found = select(s.phone, _contact_id(workspace_id, s.phone).label("contact_id")).subquery()
    selected = select(found.c.phone, found.c.contact_id, false()).where(
        found.c.contact_id.is_not(None)
    )
    conn.execute(insert(staged_ids).from_select(["phone", "contact_id", "created"], selected))


def update_staged_contacts(conn: Connection, workspace_id: int, now: datetime) -> int:
    """Apply staged values to existing contacts where they change something; the count."""
    columns = staged_contacts.c
    s = (
        select(staged_ids.c.contact_id, *columns)
        .join_from(staged_contacts, staged_ids, staged_ids.c.phone == columns.phone)
        .subquery()
        .c
    )
    c = contacts.c
    merged = _merged_attributes(conn, func.coalesce(s.attributes, "{}"))
    statement = (
        update(contacts)
        .where(c.id == s.contact_id)
        .where(
            or_(
                _changed(s.name, c.name),
                _changed(s.gender, c.gender),
                _changed(s.birthday, c.birthday),
                and_(s.birthday.is_not(None), _changed(s.birthday_lunar, c.birthday_lunar)),
                _changed(s.province, c.province),
                _changed(s.city, c.city),
                merged.is_distinct_from(c.attributes),
            )
        )
        .values(
            name=func.coalesce(s.name, c.name),
            gender=func.coalesce(s.gender, c.gender),
            birthday=func.coalesce(s.birthday, c.birthday),
            # A file that gives a birthday also says whether it is lunar (default solar).
            birthday_lunar=func.coalesce(s.birthday_lunar, c.birthday_lunar),
            province=func.coalesce(s.province, c.province),
            city=func.coalesce(s.city, c.city),
            attributes=merged,
            updated_at=now,
        )
    )
    return conn.execute(statement).rowcount


def insert_staged_contacts(conn: Connection, workspace_id: int, now: datetime) -> int:
    """Create the staged numbers that are not contacts yet, noting their new ids in
    ``staged_ids``; the count."""
    s = staged_contacts.c
    selected = select(
        literal(workspace_id),
        s.phone,
        s.name,
        s.gender,
        s.birthday,
        func.coalesce(s.birthday_lunar, false()),
        func.coalesce(s.province, s.derived_province),
        func.coalesce(s.city, s.derived_city),
        s.carrier,
        _json(conn, func.coalesce(s.attributes, "{}")),
        literal(now, contacts.c.created_at.type),
        literal(now, contacts.c.updated_at.type),
    ).where(~exists().where(staged_ids.c.phone == s.phone))
    statement = (
        insert(contacts)
        .from_select(
            [
                "workspace_id",
                "phone",
                "name",
                "gender",
                "birthday",
                "birthday_lunar",
                "province",
                "city",
                "carrier",
                "attributes",
                "created_at",
                "updated_at",
            ],
            selected,
        )
        .returning(contacts.c.phone, contacts.c.id)
    )
    created = [(phone, contact_id, True) for phone, contact_id in conn.execute(statement)]
    copy_rows(conn, staged_ids, ["phone", "contact_id", "created"], created)
    return len(created)


def _contact_exists(workspace_id: int, phone: ColumnElement[str]) -> ColumnElement[bool]:
    return exists().where(contacts.c.workspace_id == workspace_id, contacts.c.phone == phone)


def _contact_id(workspace_id: int, phone: ColumnElement[str]) -> ColumnElement[int]:
    """The id of the contact with ``phone``, looked up per staged row.

    Written as a scalar subquery rather than a join on purpose: it keeps the small
    staged batch the outer loop. Joined, SQLite (which has no statistics for a fresh
    temporary table) walks every contact of the workspace for each batch instead.
    """
    return (
        select(contacts.c.id)
        .where(contacts.c.workspace_id == workspace_id, contacts.c.phone == phone)
        .scalar_subquery()
    )


def insert_staged_tags(conn: Connection, workspace_id: int) -> int:
    """Add staged tags to their contacts (tags are only ever added by an import)."""
    t = staged_tags.c
    ids = staged_ids.c
    selected = (
        select(ids.contact_id, t.tag, literal(workspace_id))
        .join_from(staged_tags, staged_ids, ids.phone == t.phone)
        .where(
            ~exists().where(
                contact_tags.c.contact_id == ids.contact_id, contact_tags.c.tag == t.tag
            )
        )
    )
    statement = insert(contact_tags).from_select(["contact_id", "tag", "workspace_id"], selected)
    return conn.execute(statement).rowcount


def grant_staged_consent(
    conn: Connection, workspace_id: int, *, source: str, proof: str | None, now: datetime
) -> tuple[int, int]:
    """Grant marketing consent to staged contacts that never had any; (granted, withheld).

    A contact who once revoked consent is withheld: an old list re-imported must not
    bring back a consent the person took away. Only an explicit grant does that.
    """
    s = staged_contacts.c
    staged = (
        select(staged_ids.c.contact_id, staged_ids.c.created, s.consent_at, s.consent_proof)
        .join_from(staged_contacts, staged_ids, staged_ids.c.phone == s.phone)
        .where(func.coalesce(s.consent, true()))
        .subquery()
    )
    history = consents.alias("history")

    def marketing(live: bool) -> ColumnElement[bool]:
        revoked = history.c.revoked_at
        return exists().where(
            history.c.contact_id == staged.c.contact_id,
            history.c.purpose == "marketing",
            revoked.is_(None) if live else revoked.is_not(None),
        )

    withheld = conn.execute(
        select(func.count()).select_from(staged).where(marketing(live=False), ~marketing(live=True))
    ).scalar_one()
    selected = select(
        literal(workspace_id),
        staged.c.contact_id,
        literal("marketing"),
        func.coalesce(staged.c.consent_at, literal(now, consents.c.granted_at.type)),
        literal(source),
        func.coalesce(staged.c.consent_proof, literal(proof, String())),
    ).where(
        or_(
            staged.c.created,
            ~exists().where(
                history.c.contact_id == staged.c.contact_id, history.c.purpose == "marketing"
            ),
        )
    )
    granted = conn.execute(
        insert(consents).from_select(
            ["workspace_id", "contact_id", "purpose", "granted_at", "source", "proof"], selected
        )
    ).rowcount
    return granted, withheld


def insert_staged_list_members(conn: Connection, workspace_id: int, list_id: int) -> int:
    m = contact_list_members.c
    ids = staged_ids.c
    selected = select(literal(list_id), ids.contact_id, literal(workspace_id)).where(
        ~exists().where(m.list_id == list_id, m.contact_id == ids.contact_id)
    )
    statement = insert(contact_list_members).from_select(
        ["list_id", "contact_id", "workspace_id"], selected
    )
    return conn.execute(statement).rowcount


def insert_event_contacts(conn: Connection, workspace_id: int, now: datetime) -> int:
    """Create contacts first seen in staged events — with no consent of any kind."""
    e = staged_events.c
    first = (
        select(e.phone, func.min(e.event_key).label("event_key"))
        .where(~_contact_exists(workspace_id, e.phone))
        .group_by(e.phone)
        .subquery()
    )
    selected = select(
        literal(workspace_id),
        e.phone,
        e.derived_province,
        e.derived_city,
        e.carrier,
        literal(now, contacts.c.created_at.type),
        literal(now, contacts.c.updated_at.type),
    ).join_from(staged_events, first, first.c.event_key == e.event_key)
    statement = insert(contacts).from_select(
        ["workspace_id", "phone", "province", "city", "carrier", "created_at", "updated_at"],
        selected,
    )
    return conn.execute(statement).rowcount


def insert_staged_events(conn: Connection, workspace_id: int, now: datetime) -> int:
    """Store staged events not stored before (by event key); the count."""
    e = staged_events.c
    selected = select(
        literal(workspace_id),
        _contact_id(workspace_id, e.phone),
        e.type,
        e.occurred_at,
        e.amount_fen,
        e.order_id,
        e.category,
        e.coupon_code,
        _json(conn, func.coalesce(e.properties, "{}")),
        e.event_key,
        literal(now, events.c.created_at.type),
    ).where(
        ~exists().where(events.c.workspace_id == workspace_id, events.c.event_key == e.event_key)
    )
    statement = insert(events).from_select(
        [
            "workspace_id",
            "contact_id",
            "type",
            "occurred_at",
            "amount_fen",
            "order_id",
            "category",
            "coupon_code",
            "properties",
            "event_key",
            "created_at",
        ],
        selected,
    )
    return conn.execute(statement).rowcount


def insert_staged_suppressions(
    conn: Connection, workspace_id: int, *, kind: str, source: str, now: datetime
) -> int:
    p = staged_phones.c
    selected = select(
        literal(workspace_id),
        p.phone,
        literal(kind),
        p.reason,
        literal(source),
        literal(now, suppressions.c.created_at.type),
    ).where(
        ~exists().where(
            suppressions.c.workspace_id == workspace_id,
            suppressions.c.phone == p.phone,
            suppressions.c.kind == kind,
        )
    )
    statement = insert(suppressions).from_select(
        ["workspace_id", "phone", "kind", "reason", "source", "created_at"], selected
    )
    return conn.execute(statement).rowcount


# Built once: the send API runs them for every message it takes.
_CONTACT = select(contacts.c.id, contacts.c.carrier, contacts.c.province).where(
    contacts.c.workspace_id == bindparam("workspace_id"), contacts.c.phone == bindparam("phone")
)
_NEW_CONTACT = insert(contacts).returning(contacts.c.id)


class Addressee(NamedTuple):
    """A contact as a message to it records it: id, carrier and province."""

    id: int
    carrier: str | None
    province: str | None


def ensure_contact(conn: Connection, *, workspace_id: int, phone: str, now: datetime) -> int:
    """The id of the contact with normalised ``phone``, created bare if new."""
    return ensure_addressee(conn, workspace_id=workspace_id, phone=phone, now=now).id


def ensure_addressee(
    conn: Connection, *, workspace_id: int, phone: str, now: datetime
) -> Addressee:
    """The contact with normalised ``phone`` (created bare if new): id, carrier and
    province, in one statement when it exists."""
    found = conn.execute(_CONTACT, {"workspace_id": workspace_id, "phone": phone}).one_or_none()
    if found is not None:
        return Addressee(int(found.id), found.carrier, found.province)
    info = describe_phone(phone)
    carrier = None if info.carrier is None else info.carrier.value
    values = {
        "workspace_id": workspace_id,
        "phone": phone,
        "province": info.province,
        "city": info.city,
        "carrier": carrier,
        "created_at": now,
        "updated_at": now,
    }
    contact_id = int(conn.execute(_NEW_CONTACT, values).scalar_one())
    return Addressee(contact_id, carrier, info.province)
