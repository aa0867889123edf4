"""SQL of journeys: who a journey reaches and the facts its steps depend on — contacts
as templates read them, audiences of scheduled triggers (consent, birthdays, joining,
inactivity, segment members), and what happened since (events, clicks, replies).
Every statement is scoped to a workspace."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, extract, func, or_, select

from echelon.content.preview import ContactValues
from echelon.db.bulk import copy_rows
from echelon.db.journeys import journey_segment_members
from echelon.db.outbox import messages, replies
from echelon.db.tables import consents, contact_tags, contacts, events, suppressions
from echelon.db.tracking import clicks
from echelon.journeys.queries import among_ids
from echelon.segments.expressions import json_property

# A contact as a batch reads it: its row of ``ContactValues.columns`` (id, phone,
# carrier, province first), its attributes (decoded; empty unless the templates need
# them), its tags.
ContactRow = tuple[Sequence[Any], dict[str, Any], list[str]]


def contact_rows(
    conn: Connection, workspace_id: int, contact_ids: Collection[int], values: ContactValues
) -> dict[int, ContactRow]:
    """The contacts with only what the templates' variables need (the planner's way)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    with_attributes = values.attribute_keys is None or bool(values.attribute_keys)
    selected = [contacts.c[name] for name in values.columns]
    if with_attributes:
        selected.append(contacts.c.attributes)
    rows = conn.execute(
        select(*selected).where(
            among_ids(conn, contacts.c.id, ids), contacts.c.workspace_id == workspace_id
        )
    )
    width = len(values.columns)
    found: dict[int, ContactRow] = {
        row[0]: (row[:width], (row[width] or {}) if with_attributes else {}, []) for row in rows
    }
    if values.needs_tags:
        for contact_id, tag in conn.execute(
            select(contact_tags.c.contact_id, contact_tags.c.tag).where(
                among_ids(conn, contact_tags.c.contact_id, ids),
                contact_tags.c.workspace_id == workspace_id,
            )
        ):
            found[contact_id][2].append(tag)
    return found


def opted_out(conn: Connection, workspace_id: int, phones: Collection[str]) -> set[str]:
    if not phones:
        return set()
    s = suppressions.c
    return set(
        conn.execute(
            select(s.phone).where(
                s.workspace_id == workspace_id,
                among_ids(conn, s.phone, sorted(set(phones))),
                s.kind == "opt_out",
            )
        ).scalars()
    )


def consenting(workspace_id: int) -> ColumnElement[bool]:
    """The contact has a live marketing consent (the default audience)."""
    return exists().where(
        consents.c.contact_id == contacts.c.id,
        consents.c.purpose == "marketing",
        consents.c.revoked_at.is_(None),
        consents.c.workspace_id == workspace_id,
    )


def member_ids(
    conn: Connection,
    workspace_id: int,
    predicate: ColumnElement[bool],
    contact_ids: Collection[int] | None = None,
) -> set[int]:
    """Contacts of the workspace for which ``predicate`` holds (among ``contact_ids``)."""
    query = select(contacts.c.id).where(contacts.c.workspace_id == workspace_id, predicate)
    if contact_ids is not None:
        if not contact_ids:
            return set()
        query = query.where(among_ids(conn, contacts.c.id, sorted(set(contact_ids))))
    return set(conn.execute(query).scalars())


def birthdays(
    conn: Connection,
    workspace_id: int,
    audience: ColumnElement[bool],
    *,
    lunar: bool,
    keys: Sequence[tuple[int, int]],
) -> list[int]:
    """Contacts in the audience whose (solar, or lunar) birthday is one of ``keys``."""
    if not keys:
        return []
    c = contacts.c
    month, day = extract("month", c.birthday), extract("day", c.birthday)
    return list(
        conn.execute(
            select(c.id).where(
                c.workspace_id == workspace_id,
                c.birthday.is_not(None),
                c.birthday_lunar.is_(lunar),
                or_(*(and_(month == m, day == d) for m, d in keys)),
                audience,
            )
        ).scalars()
    )


def join_dates(
    conn: Connection, workspace_id: int, audience: ColumnElement[bool], attribute: str | None
) -> Iterable[tuple[int, Any]]:
    """(contact id, when they joined): ``created_at``, or the attribute's value."""
    c = contacts.c
    if attribute is None:
        return conn.execute(
            select(c.id, c.created_at).where(c.workspace_id == workspace_id, audience)
        )
    value = json_property(c.attributes, attribute)
    return conn.execute(
        select(c.id, value).where(c.workspace_id == workspace_id, value.is_not(None), audience)
    )


def last_activity(
    conn: Connection,
    workspace_id: int,
    audience: ColumnElement[bool],
    *,
    types: Sequence[str],
    upto: datetime,
    since: datetime | None,
) -> list[tuple[int, datetime]]:
    """Contacts in the audience whose last activity — their last event of ``types``
    (any event when empty), or their joining if they never had one — was in
    ``(since, upto]``: (contact id, that moment)."""
    ev, c = events.c, contacts.c
    where = [ev.workspace_id == workspace_id]
    if types:
        where.append(ev.type.in_(list(types)))
    last = (
        select(ev.contact_id, func.max(ev.occurred_at).label("at"))
        .where(*where)
        .group_by(ev.contact_id)
        .subquery()
    )
    moment = func.coalesce(last.c.at, c.created_at)
    bounds = [moment <= upto]
    if since is not None:
        bounds.append(moment > since)
    rows = conn.execute(
        select(c.id, last.c.at, c.created_at)
        .join_from(contacts, last, last.c.contact_id == c.id, isouter=True)
        .where(c.workspace_id == workspace_id, audience, *bounds)
    )
    return [(contact_id, at or created) for contact_id, at, created in rows]


def segment_members_of(conn: Connection, journey_id: int) -> set[int]:
    m = journey_segment_members.c
    return set(conn.execute(select(m.contact_id).where(m.journey_id == journey_id)).scalars())


def update_segment_members(
    conn: Connection,
    *,
    workspace_id: int,
    journey_id: int,
    joined: Collection[int],
    left: Collection[int],
) -> None:
    m = journey_segment_members.c
    if left:
        conn.execute(
            delete(journey_segment_members).where(
                m.journey_id == journey_id, among_ids(conn, m.contact_id, sorted(left))
            )
        )
    copy_rows(
        conn,
        journey_segment_members,
        ("journey_id", "contact_id", "workspace_id"),
        [(journey_id, contact_id, workspace_id) for contact_id in sorted(joined)],
    )


# ---------------------------------------------------------------- facts


def events_of(
    conn: Connection,
    workspace_id: int,
    contact_ids: Collection[int],
    types: Collection[str],
    since: datetime,
    until: datetime,
) -> Sequence[Any]:
    """Events of these types by these contacts that occurred in [``since``, ``until``]."""
    if not contact_ids or not types:
        return []
    ev = events.c
    return conn.execute(
        select(
            ev.id, ev.contact_id, ev.type, ev.occurred_at, ev.amount_fen, ev.order_id,
            ev.category, ev.coupon_code, ev.properties,
        ).where(
            among_ids(conn, ev.contact_id, sorted(set(contact_ids))),
            ev.workspace_id == workspace_id,
            ev.type.in_(sorted(types)),
            ev.occurred_at >= since,
            ev.occurred_at <= until,
        )
    ).all()  # fmt: skip


def journey_messages(conn: Connection, enrolment_ids: Collection[int]) -> Sequence[Any]:
    """Messages of these enrolments: (id, enrolment id, step, due at), oldest first."""
    if not enrolment_ids:
        return []
    m = messages.c
    return conn.execute(
        select(m.id, m.enrolment_id, m.journey_step, m.due_at)
        .where(among_ids(conn, m.enrolment_id, sorted(set(enrolment_ids))))
        .order_by(m.id)
    ).all()


def human_clicks(
    conn: Connection, workspace_id: int, message_ids: Collection[int]
) -> Sequence[Any]:
    """(message id, clicked at) of people's clicks on these messages."""
    if not message_ids:
        return []
    k = clicks.c
    return conn.execute(
        select(k.message_id, k.clicked_at).where(
            among_ids(conn, k.message_id, sorted(set(message_ids))),
            k.workspace_id == workspace_id,
            k.human,
        )
    ).all()


def replied_to(conn: Connection, workspace_id: int, message_ids: Collection[int]) -> set[int]:
    if not message_ids:
        return set()
    r = replies.c
    return set(
        conn.execute(
            select(r.message_id).where(
                among_ids(conn, r.message_id, sorted(set(message_ids))),
                r.workspace_id == workspace_id,
            )
        ).scalars()
    )
