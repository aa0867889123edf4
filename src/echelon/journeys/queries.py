"""SQL of journeys: definitions and versions, enrolments (entering, claiming, moving,
exiting), what the runner reads (events, clicks, opt-outs, facts for branches), the
messages a step writes, and the counts of ``journeys stats``.

Every statement on customer rows is scoped to a workspace, or to journeys or
enrolments that are.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from echelon.db.bulk import among, copy_rows, json_text, sqlite_time
from echelon.db.journeys import (
    journey_cursors,
    journey_enrolments,
    journey_step_counts,
    journey_versions,
    journeys,
)
from echelon.db.lists import update_rows
from echelon.db.outbox import messages
from echelon.db.tables import contacts, events, suppressions, workspaces
from echelon.db.tracking import clicks, conversions, coupons, links

e = journey_enrolments.c


def among_ids(
    conn: Connection, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """``column`` among ``values`` as a semi-join on the list. On PostgreSQL ``= ANY(array)``
    is a filter tried against every row when the planner thinks a table small — as a
    table growing inside a run still looks — which is quadratic; a semi-join on
    ``unnest`` is linear whatever the statistics say."""
    if conn.dialect.name == "postgresql":
        listed = bindparam(None, list(values), type_=ARRAY(column.type))
        return column.in_(select(func.unnest(listed)))
    return among(conn, column, values)


# ---------------------------------------------------------------- journeys


def journey_row(conn: Connection, workspace_id: int, name: str, *, lock: bool = False) -> Any:
    query = select(journeys).where(journeys.c.workspace_id == workspace_id, journeys.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).one_or_none()


def journey_rows(conn: Connection, workspace_id: int) -> Sequence[Any]:
    return conn.execute(
        select(journeys)
        .where(journeys.c.workspace_id == workspace_id)
        .order_by(journeys.c.created_at.desc(), journeys.c.id.desc())
    ).all()


def insert_journey(conn: Connection, **values: Any) -> int:
    inserted = conn.execute(insert(journeys).values(**values).returning(journeys.c.id))
    return int(inserted.scalar_one())


def update_journey(conn: Connection, journey_id: int, **values: Any) -> None:
    conn.execute(update(journeys).where(journeys.c.id == journey_id).values(**values))


def insert_version(
    conn: Connection,
    *,
    workspace_id: int,
    journey_id: int,
    version: int,
    definition: dict[str, Any],
    now: datetime,
) -> int:
    inserted = conn.execute(
        insert(journey_versions)
        .values(
            workspace_id=workspace_id,
            journey_id=journey_id,
            version=version,
            definition=definition,
            created_at=now,
        )
        .returning(journey_versions.c.id)
    )
    return int(inserted.scalar_one())


def version_rows(conn: Connection, journey_id: int) -> Sequence[Any]:
    v = journey_versions.c
    return conn.execute(
        select(v.id, v.version, v.definition, v.created_at)
        .where(v.journey_id == journey_id)
        .order_by(v.version)
    ).all()


def definitions(conn: Connection, version_ids: Collection[int]) -> dict[int, dict[str, Any]]:
    v = journey_versions.c
    rows = conn.execute(select(v.id, v.definition).where(v.id.in_(list(version_ids))))
    return {row.id: row.definition for row in rows}


class ActiveJourney(NamedTuple):
    id: int
    workspace_id: int
    name: str
    version_id: int
    definition: dict[str, Any]
    activated_at: datetime
    scanned_at: datetime | None
    scanned_day: date | None
    timezone: str


def active_journeys(conn: Connection) -> list[ActiveJourney]:
    """Every active journey of every workspace, with its current version."""
    j, v = journeys.c, journey_versions.c
    rows = conn.execute(
        select(
            j.id,
            j.workspace_id,
            j.name,
            v.id.label("version_id"),
            v.definition,
            j.activated_at,
            j.scanned_at,
            j.scanned_day,
            workspaces.c.timezone,
        )
        .join_from(journeys, journey_versions, and_(v.journey_id == j.id, v.version == j.version))
        .join(workspaces, workspaces.c.id == j.workspace_id)
        .where(j.status == "active")
        .order_by(j.id)
    )
    return [ActiveJourney(*row) for row in rows]


def lock_journey(conn: Connection, journey_id: int) -> Any:
    """The journey's trigger state, locked for this transaction; None when another
    runner holds it (PostgreSQL) or it is no longer active."""
    query = select(journeys.c.status, journeys.c.scanned_at, journeys.c.scanned_day).where(
        journeys.c.id == journey_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).one_or_none()
    return row if row is not None and row.status == "active" else None


# ---------------------------------------------------------------- cursors


def lock_cursor(conn: Connection, workspace_id: int, source: str) -> int | None:
    """The workspace's position in ``source``, locked for this transaction; None when
    it has none yet, or another runner is reading it (PostgreSQL)."""
    c = journey_cursors.c
    query = select(c.position).where(c.workspace_id == workspace_id, c.source == source)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = conn.execute(query).scalar_one_or_none()
    return None if found is None else int(found)


def start_cursor(
    conn: Connection, workspace_id: int, source: str, position: int, now: datetime
) -> None:
    """Create the cursor at ``position`` unless it exists (no error either way)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(journey_cursors).values(
        workspace_id=workspace_id, source=source, position=position, updated_at=now
    )
    conn.execute(statement.on_conflict_do_nothing())


def move_cursor(
    conn: Connection, workspace_id: int, source: str, position: int, now: datetime
) -> None:
    c = journey_cursors.c
    conn.execute(
        update(journey_cursors)
        .where(c.workspace_id == workspace_id, c.source == source)
        .values(position=position, updated_at=now)
    )


def top_ids(conn: Connection) -> dict[str, int]:
    """The highest id of each source table now (0 when empty)."""
    return {
        "events": int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()),
        "clicks": int(conn.execute(select(func.coalesce(func.max(clicks.c.id), 0))).scalar_one()),
        "opt_outs": int(
            conn.execute(select(func.coalesce(func.max(suppressions.c.id), 0))).scalar_one()
        ),
    }


def event_writers(conn: Connection) -> frozenset[tuple[int, str]]:
    """Other PostgreSQL transactions that may be writing events now: (pid, start) of
    each holding a row-exclusive lock on ``events`` (an insert takes it until commit)."""
    rows = conn.execute(
        text(
            "SELECT l.pid, a.xact_start::text FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'relation' AND l.relation = 'events'::regclass "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()"
        )
    )
    return frozenset((int(pid), str(start)) for pid, start in rows)


# ---------------------------------------------------------------- sources


def event_keys_after(
    conn: Connection, workspace_id: int, *, after: int, upto: int, limit: int
) -> Sequence[Any]:
    """(id, contact id, type) of the next events, in id order: what a chunk holds."""
    ev = events.c
    return conn.execute(
        select(ev.id, ev.contact_id, ev.type)
        .where(ev.workspace_id == workspace_id, ev.id > after, ev.id <= upto)
        .order_by(ev.id)
        .limit(limit)
    ).all()


def events_between(
    conn: Connection,
    workspace_id: int,
    *,
    after: int,
    upto: int,
    contact_ids: Collection[int] | None = None,
    event_type: str | None = None,
) -> Sequence[Any]:
    """Events with ids in (``after``, ``upto``] — of these contacts, of this type — in
    id order, with everything a filter or a template may read."""
    ev = events.c
    query = select(
        ev.id, ev.contact_id, ev.type, ev.occurred_at, ev.amount_fen, ev.order_id,
        ev.category, ev.coupon_code, ev.properties, ev.created_at,
    ).where(ev.workspace_id == workspace_id, ev.id > after, ev.id <= upto)  # fmt: skip
    if contact_ids is not None:
        query = query.where(among_ids(conn, ev.contact_id, sorted(set(contact_ids))))
    if event_type is not None:
        query = query.where(ev.type == event_type)
    return conn.execute(query.order_by(ev.id)).all()


def enter_from_events(
    conn: Connection,
    *,
    workspace_id: int,
    journey_id: int,
    version_id: int,
    first_step: str,
    event_type: str,
    after: int,
    upto: int,
    activated_at: datetime,
    reentry: str,
    window: timedelta | None,
    now: datetime,
) -> int:
    """Enrol, set-based, each contact whose first ``event_type`` event with an id in
    (``after``, ``upto``] came in while the journey was active, unless the re-entry
    policy keeps them out (never while inside; ``once``: never again; ``once_per``:
    not within ``window``). The event's facts become the enrolment's context."""
    ev = events.c
    firsts = (
        select(func.min(ev.id).label("id"))
        .where(
            ev.workspace_id == workspace_id,
            ev.id > after,
            ev.id <= upto,
            ev.type == event_type,
            ev.created_at >= activated_at,
        )
        .group_by(ev.contact_id)
        .subquery()
    )
    x = journey_enrolments.alias("x")
    keeps_out: ColumnElement[bool] = x.c.status == "active"
    if reentry == "once":
        keeps_out = true()
    elif reentry == "once_per":
        assert window is not None
        keeps_out = or_(keeps_out, x.c.entered_at > now - window)
    inside = exists().where(
        x.c.journey_id == journey_id, x.c.contact_id == ev.contact_id, keeps_out
    )
    stamp = journey_enrolments.c.entered_at.type
    selected = (
        select(
            literal(workspace_id, BigInteger),
            literal(journey_id, BigInteger),
            literal(version_id, BigInteger),
            ev.contact_id,
            literal("event:", String) + cast(ev.id, String),
            literal("active", String),
            literal(first_step, String),
            literal(now, stamp),
            _event_context(conn),
            literal(now, stamp),
            literal(now, stamp),
        )
        .join_from(events, firsts, firsts.c.id == ev.id)
        .where(~inside)
    )
    return conn.execute(
        insert(journey_enrolments).from_select(ENROLMENT_COLUMNS, selected)
    ).rowcount


def _event_context(conn: Connection) -> ColumnElement[Any]:
    """An event's facts as a JSON object, as ``runner`` builds it for one event."""
    ev = events.c
    if conn.dialect.name == "postgresql":
        return func.jsonb_strip_nulls(
            func.jsonb_build_object(
                literal_column("'event_id'"), ev.id,
                literal_column("'event'"), ev.type,
                literal_column("'occurred_at'"), func.to_char(
                    func.timezone(literal_column("'UTC'"), ev.occurred_at),
                    literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"'"),
                ),
                literal_column("'order_id'"), ev.order_id,
                literal_column("'amount'"), func.to_char(
                    ev.amount_fen / literal_column("100.0"), literal_column("'FM999999999990.00'")
                ),
                literal_column("'category'"), ev.category,
                literal_column("'coupon_code'"), ev.coupon_code,
                literal_column("'properties'"), ev.properties,
            )
        )  # fmt: skip
    amount = case(
        (ev.amount_fen.is_(None), null()),
        else_=func.printf(literal_column("'%.2f'"), ev.amount_fen / literal_column("100.0")),
    )
    return func.json_object(
        literal_column("'event_id'"), ev.id,
        literal_column("'event'"), ev.type,
        literal_column("'occurred_at'"),
        func.strftime(literal_column("'%Y-%m-%dT%H:%M:%S+00:00'"), ev.occurred_at),
        literal_column("'order_id'"), ev.order_id,
        literal_column("'amount'"), amount,
        literal_column("'category'"), ev.category,
        literal_column("'coupon_code'"), ev.coupon_code,
        literal_column("'properties'"), func.json(ev.properties),
    )  # fmt: skip


def clicks_after(conn: Connection, workspace_id: int, *, after: int, limit: int) -> Sequence[Any]:
    """Clicks by people (not previews or scanners), in id order: (id, when, the
    enrolment of the message clicked — None if no journey's)."""
    return conn.execute(
        select(clicks.c.id, clicks.c.clicked_at, messages.c.enrolment_id)
        .join_from(clicks, messages, messages.c.id == clicks.c.message_id, isouter=True)
        .where(clicks.c.workspace_id == workspace_id, clicks.c.id > after, clicks.c.human)
        .order_by(clicks.c.id)
        .limit(limit)
    ).all()


def opt_outs_after(conn: Connection, workspace_id: int, *, after: int, limit: int) -> Sequence[Any]:
    """Opt-outs in id order: (id, contact id of that number, if any)."""
    s = suppressions.c
    return conn.execute(
        select(s.id, contacts.c.id.label("contact_id"))
        .join_from(
            suppressions,
            contacts,
            and_(contacts.c.workspace_id == workspace_id, contacts.c.phone == s.phone),
            isouter=True,
        )
        .where(s.workspace_id == workspace_id, s.id > after, s.kind == "opt_out")
        .order_by(s.id)
        .limit(limit)
    ).all()


# ---------------------------------------------------------------- enrolments

ENROLMENT_COLUMNS = (
    "workspace_id",
    "journey_id",
    "version_id",
    "contact_id",
    "entry_key",
    "status",
    "step",
    "next_run_at",
    "context",
    "entered_at",
    "updated_at",
)


def active_enrolments(
    conn: Connection, workspace_id: int, contact_ids: Collection[int]
) -> Sequence[Any]:
    """The active enrolments (any journey) of these contacts."""
    if not contact_ids:
        return []
    return conn.execute(
        select(
            e.id, e.journey_id, e.version_id, e.contact_id, e.step, e.waiting_since,
            e.entered_at, e.context,
        ).where(
            among_ids(conn, e.contact_id, sorted(set(contact_ids))),
            e.workspace_id == workspace_id,
            e.status == "active",
        )
    ).all()  # fmt: skip


def waiting_enrolments(conn: Connection, enrolment_ids: Collection[int]) -> Sequence[Any]:
    """Those of these enrolments that are active and waiting at their step."""
    if not enrolment_ids:
        return []
    return conn.execute(
        select(e.id, e.version_id, e.step, e.waiting_since).where(
            among_ids(conn, e.id, sorted(enrolment_ids)),
            e.status == "active",
            e.waiting_since.is_not(None),
        )
    ).all()


def entry_history(
    conn: Connection, journey_id: int, contact_ids: Collection[int]
) -> dict[int, tuple[datetime, bool]]:
    """Per contact who was ever in the journey: when they last entered, and whether
    they are inside now."""
    if not contact_ids:
        return {}
    active = func.max(case((e.status == "active", 1), else_=0))
    rows = conn.execute(
        select(e.contact_id, func.max(e.entered_at), active)
        .where(among_ids(conn, e.contact_id, sorted(set(contact_ids))), e.journey_id == journey_id)
        .group_by(e.contact_id)
    )
    return {contact_id: (entered, bool(inside)) for contact_id, entered, inside in rows}


def insert_enrolments(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Rows in ``ENROLMENT_COLUMNS`` order, ``context`` as JSON text."""
    copy_rows(conn, journey_enrolments, ENROLMENT_COLUMNS, rows)


class Due(NamedTuple):
    id: int
    workspace_id: int
    journey_id: int
    version_id: int
    contact_id: int
    step: str
    next_run_at: datetime
    waiting_since: datetime | None
    entered_at: datetime
    context: dict[str, Any]


def claim_due(
    conn: Connection, *, journey_ids: Collection[int], now: datetime, limit: int
) -> list[Due]:
    """Lock up to ``limit`` due active enrolments of these journeys, oldest due first:
    FOR UPDATE SKIP LOCKED on PostgreSQL (runners claim side by side, never the same
    one); SQLite's BEGIN IMMEDIATE makes the caller the single writer."""
    query = (
        select(
            e.id, e.workspace_id, e.journey_id, e.version_id, e.contact_id, e.step,
            e.next_run_at, e.waiting_since, e.entered_at, e.context,
        )
        .where(e.status == "active", e.next_run_at <= now, e.journey_id.in_(list(journey_ids)))
        .order_by(e.next_run_at, e.id)
        .limit(limit)
    )  # fmt: skip
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [Due._make(row) for row in conn.execute(query)]


ENROLMENT_CHANGES = (
    "id",
    "status",
    "step",
    "next_run_at",
    "waiting_since",
    "exit_reason",
    "finished_at",
    "updated_at",
)


def write_enrolments(conn: Connection, changes: Sequence[Sequence[Any]]) -> None:
    """Batched moves in one statement: rows in ``ENROLMENT_CHANGES`` order."""
    if not changes:
        return
    if conn.dialect.name == "postgresql":
        update_rows(
            conn,
            journey_enrolments,
            [dict(zip(ENROLMENT_CHANGES, c, strict=True)) for c in changes],
        )
        return
    # SQLite: times spelled as SQLAlchemy stores them, each distinct one once (a batch
    # shares a few), then one UPDATE … FROM json_each.
    spelled: dict[datetime, str] = {}

    def spell(value: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        found = spelled.get(value)
        if found is None:
            found = spelled[value] = sqlite_time(value)
        return found

    payload = json_text([[spell(v) for v in change] for change in changes])
    sets = ", ".join(
        f"{name} = json_extract(j.value, '$[{i}]')" for i, name in enumerate(ENROLMENT_CHANGES) if i
    )
    conn.exec_driver_sql(
        f"UPDATE journey_enrolments SET {sets} FROM json_each(?) AS j "
        "WHERE journey_enrolments.id = json_extract(j.value, '$[0]')",
        (payload,),
    )


def finish_enrolments(
    conn: Connection, enrolment_ids: Collection[int], *, status: str, reason: str, now: datetime
) -> int:
    """Active ones among ``enrolment_ids`` leave with ``reason``; how many did."""
    if not enrolment_ids:
        return 0
    return conn.execute(
        update(journey_enrolments)
        .where(among_ids(conn, e.id, sorted(enrolment_ids)), e.status == "active")
        .values(
            status=status,
            exit_reason=reason,
            next_run_at=None,
            finished_at=now,
            updated_at=now,
        )
    ).rowcount


def wake(conn: Connection, enrolment_ids: Collection[int], now: datetime) -> int:
    """Make these active enrolments due now (what they wait for may have happened)."""
    if not enrolment_ids:
        return 0
    return conn.execute(
        update(journey_enrolments)
        .where(
            among_ids(conn, e.id, sorted(enrolment_ids)),
            e.status == "active",
            e.next_run_at > now,
        )
        .values(next_run_at=now, updated_at=now)
    ).rowcount


def count_steps(
    conn: Connection,
    *,
    workspace_id: int,
    counts: Mapping[tuple[int, str], int],
    now: datetime,
) -> None:
    """Add how many enrolments reached each (journey, step) in this batch."""
    if counts:
        conn.execute(
            insert(journey_step_counts),
            [
                {"workspace_id": workspace_id, "journey_id": journey_id, "step": step,
                 "entered": n, "at": now}
                for (journey_id, step), n in counts.items()
            ],
        )  # fmt: skip


# ---------------------------------------------------------------- messages of steps

MESSAGE_COLUMNS = (
    "workspace_id",
    "contact_id",
    "phone",
    "kind",
    "text",
    "text_hash",
    "parts",
    "cost_e4",
    "status",
    "block_reason",
    "due_at",
    "created_at",
    "updated_at",
    "journey_id",
    "enrolment_id",
    "journey_step",
    "carrier",
    "province",
)


def step_messages(
    conn: Connection, enrolment_ids: Collection[int]
) -> dict[tuple[int, str], tuple[int, str, datetime]]:
    """The messages these enrolments' steps already have: (enrolment, step) → (id,
    status, due at)."""
    return {
        (row.enrolment_id, row.journey_step): (row.id, row.status, row.due_at)
        for row in conn.execute(
            select(
                messages.c.id,
                messages.c.enrolment_id,
                messages.c.journey_step,
                messages.c.status,
                messages.c.due_at,
            ).where(among_ids(conn, messages.c.enrolment_id, sorted(set(enrolment_ids))))
        )
    } if enrolment_ids else {}  # fmt: skip


def insert_messages(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Rows in ``MESSAGE_COLUMNS`` order, built by the runner with valid statuses and
    times as ``stored_time`` gives them (so they go in as trusted rows)."""
    copy_rows(conn, messages, MESSAGE_COLUMNS, rows, trusted=True)


def insert_links(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(links), list(rows))


def insert_coupons(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(coupons), list(rows))


def move_messages(
    conn: Connection, journey_id: int, *, from_status: str, to: str, now: datetime
) -> int:
    return conn.execute(
        update(messages)
        .where(messages.c.journey_id == journey_id, messages.c.status == from_status)
        .values(status=to, updated_at=now)
    ).rowcount


# ---------------------------------------------------------------- stats


def enrolment_counts(conn: Connection, journey_id: int) -> Sequence[Any]:
    """(status, step, exit reason, count)."""
    return conn.execute(
        select(e.status, e.step, e.exit_reason, func.count())
        .where(e.journey_id == journey_id)
        .group_by(e.status, e.step, e.exit_reason)
    ).all()


def first_step_entries(conn: Connection, journey_id: int) -> dict[int, int]:
    """Enrolments per version (each entered its version's first step)."""
    rows = conn.execute(
        select(e.version_id, func.count()).where(e.journey_id == journey_id).group_by(e.version_id)
    )
    return {version_id: int(n) for version_id, n in rows}


def step_counts(conn: Connection, journey_id: int) -> dict[str, int]:
    """How many reached each step after their first."""
    c = journey_step_counts.c
    rows = conn.execute(
        select(c.step, func.sum(c.entered)).where(c.journey_id == journey_id).group_by(c.step)
    )
    return {step: int(n) for step, n in rows}


def message_counts(conn: Connection, journey_id: int) -> Sequence[Any]:
    """(step, status, block reason, count) of the journey's messages."""
    m = messages.c
    return conn.execute(
        select(m.journey_step, m.status, m.block_reason, func.count())
        .where(m.journey_id == journey_id)
        .group_by(m.journey_step, m.status, m.block_reason)
    ).all()


def click_counts(conn: Connection, journey_id: int) -> dict[str, int]:
    """Messages clicked by a person, per step."""
    m, k = messages.c, clicks.c
    rows = conn.execute(
        select(m.journey_step, func.count(func.distinct(k.message_id)))
        .join_from(clicks, messages, m.id == k.message_id)
        .where(m.journey_id == journey_id, k.human)
        .group_by(m.journey_step)
    )
    return {step: int(n) for step, n in rows}


def conversion_counts(conn: Connection, journey_id: int) -> dict[str, int]:
    """Orders credited to each step's messages (tracking's attribution)."""
    m, v = messages.c, conversions.c
    rows = conn.execute(
        select(m.journey_step, func.count())
        .join_from(conversions, messages, m.id == v.message_id)
        .where(m.journey_id == journey_id)
        .group_by(m.journey_step)
    )
    return {step: int(n) for step, n in rows}


def workspace_timezone(conn: Connection, workspace_id: int) -> str:
    return str(
        conn.execute(
            select(workspaces.c.timezone).where(workspaces.c.id == workspace_id)
        ).scalar_one()
    )


def analyze(conn: Connection) -> None:
    """Refresh PostgreSQL's statistics of the tables a run grows (a small sample is
    enough to tell a big table from an empty one); SQLite plans by index, needs none."""
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")
    for table in (journey_enrolments, messages):
        conn.exec_driver_sql(f"ANALYZE {table.name}")
