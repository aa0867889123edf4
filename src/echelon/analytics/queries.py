"""SQL of analytics: a set of messages tallied in a few set-based queries.

One scan of the messages groups them by the requested keys and by (status, reason,
latency bucket) — a campaign's through ``ix_messages_campaign_id_status`` — and small
queries count what followed them (clicks, conversions, opt-outs, complaints) from
their own tables, joining back to the messages only for the grouping keys. Python
folds the few hundred rows that come back into metrics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Select,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION

from echelon.analytics.models import FAILED, SENT, WAITING, GroupBy, Tally
from echelon.analytics.rules import FINE_LIMIT_S, LATENCY_EDGES, MEDIUM_LIMIT_S
from echelon.db.journeys import journeys
from echelon.db.outbox import campaigns, channels, messages, replies
from echelon.db.tables import contacts, workspaces
from echelon.db.tracking import clicks, complaints, conversions, report_snapshots

Key = tuple[Any, ...]
_FINE = FINE_LIMIT_S * 10
_MEDIUM = MEDIUM_LIMIT_S - FINE_LIMIT_S


@dataclass(frozen=True, slots=True)
class Scope:
    """Which messages of a workspace: a campaign's, or those due (or submitted) in a
    time range; either way every query is scoped to the workspace."""

    workspace_id: int
    campaign_id: int | None = None
    outside_campaigns: bool = False
    statuses: tuple[str, ...] = ()
    due_from: datetime | None = None
    due_until: datetime | None = None
    submitted_from: datetime | None = None

    @property
    def since(self) -> datetime | None:
        """What follows a message comes after it went out: a bound for the follow-ups."""
        return self.due_from or self.submitted_from


def _latency_bucket(conn: Connection) -> ColumnElement[Any]:
    """``rules.latency_bucket`` in SQL, for delivered messages with both times."""
    m = messages.c
    missing = or_(m.status != "delivered", m.submitted_at.is_(None), m.done_at.is_(None))
    if conn.dialect.name == "postgresql":
        seconds = func.date_part("epoch", m.done_at - m.submitted_at)
        edges = literal(list(LATENCY_EDGES), ARRAY(DOUBLE_PRECISION))
        return case((missing, literal(None)), else_=func.width_bucket(seconds, edges))
    # SQLite has no width_bucket; the same edges, by arithmetic.
    elapsed = cast((func.julianday(m.done_at) - func.julianday(m.submitted_at)) * 86400.0, Float)
    last = len(LATENCY_EDGES)
    return case(
        (missing, literal(None)),
        (elapsed < 0, literal(0)),
        (elapsed < FINE_LIMIT_S, func.floor(elapsed * 10)),
        (elapsed < MEDIUM_LIMIT_S, _FINE + func.floor(elapsed - FINE_LIMIT_S)),
        else_=func.min(last, _FINE + _MEDIUM + func.floor((elapsed - MEDIUM_LIMIT_S) / 60)),
    )


def _utc_hour(conn: Connection, moment: Any = None) -> ColumnElement[Any]:
    """The UTC hour of ``moment`` — by default the hour a message went (or is due to
    go) — folded into local hours later."""
    if moment is None:
        moment = func.coalesce(messages.c.submitted_at, messages.c.due_at)
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", moment))
    return func.strftime("%Y-%m-%d %H:00:00", moment)


def _key(conn: Connection, name: GroupBy | str) -> ColumnElement[Any]:
    m = messages.c
    if name == "variant":
        return m.variant
    if name == "channel":
        return m.channel_id
    if name == "carrier":
        return m.carrier
    if name == "province":
        return m.province
    if name == "hour":
        return _utc_hour(conn)
    raise ValueError(f"unknown grouping {name!r}")


def _in_scope(scope: Scope) -> list[ColumnElement[bool]]:
    m = messages.c
    found: list[ColumnElement[bool]] = [m.workspace_id == scope.workspace_id]
    if scope.campaign_id is not None:
        found.append(m.campaign_id == scope.campaign_id)
    if scope.outside_campaigns:
        found.append(m.campaign_id.is_(None))
    if scope.statuses:
        found.append(m.status.in_(scope.statuses))
    if scope.due_from is not None:
        found.append(m.due_at >= scope.due_from)
    if scope.due_until is not None:
        found.append(m.due_at < scope.due_until)
    if scope.submitted_from is not None:
        found.append(m.submitted_at >= scope.submitted_from)
    return found


def _keyed(conn: Connection, keys: Sequence[str]) -> list[Any]:
    """The key columns: each a column of the message (its carrier and province as they
    were when it was planned), so no grouping joins another table."""
    return [_key(conn, name).label(f"k{i}") for i, name in enumerate(keys)]


def outcome_query(conn: Connection, scope: Scope, keys: Sequence[str]) -> Select[Any]:
    """The scan: messages per key, status, reason and latency bucket, with their cost."""
    m = messages.c
    columns = _keyed(conn, keys)
    reason = case(
        (m.status == "blocked", m.block_reason),
        (m.status.in_(FAILED), func.coalesce(m.error_code, "unknown")),
        else_=literal(None),
    ).label("reason")
    bucket = _latency_bucket(conn).label("bucket")
    return (
        select(
            *columns,
            m.status,
            reason,
            bucket,
            func.count().label("n"),
            func.sum(case((m.status.in_(SENT), m.cost_e4), else_=0)).label("cost"),
        )
        .select_from(messages)
        .where(*_in_scope(scope))
        .group_by(*columns, m.status, reason, bucket)
    )


def _tune_scan(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Room to group in memory: the planner cannot know the groups are few. No JIT:
        # compiling this query took longer than running it (1.9 s of 3.7 s at a
        # million messages).
        conn.execute(text("SET LOCAL work_mem = '64MB'"))
        conn.execute(text("SET LOCAL jit = off"))


def _follow_up(
    conn: Connection,
    scope: Scope,
    keys: Sequence[str],
    table: Any,
    message_id: Any,
    filters: list[ColumnElement[bool]],
    *measures: Any,
) -> Select[Any]:
    """Rows of ``table`` about messages in scope, measured per key. Without keys (a
    campaign's total) the messages are not read at all."""
    if not keys and scope.campaign_id is not None and "campaign_id" in table.c:
        return select(*measures).where(
            *filters,
            table.c.workspace_id == scope.workspace_id,
            table.c.campaign_id == scope.campaign_id,
        )
    if scope.campaign_id is not None and "campaign_id" in table.c:
        # Narrow the small table by its own index before joining the messages.
        filters = [*filters, table.c.campaign_id == scope.campaign_id]
    source = table.join(messages, messages.c.id == message_id)
    columns = _keyed(conn, keys)
    return (
        select(*columns, *measures)
        .select_from(source)
        .where(*filters, table.c.workspace_id == scope.workspace_id, *_in_scope(scope))
        .group_by(*columns)
    )


def follow_up_queries(
    conn: Connection, scope: Scope, keys: Sequence[str]
) -> dict[str, Select[Any]]:
    """Per key: unique clicks by people, conversions and revenue, opt-outs, complaints."""
    since = scope.since
    click_filters: list[ColumnElement[bool]] = [clicks.c.human.is_(True)]
    conversion_filters: list[ColumnElement[bool]] = []
    complaint_filters: list[ColumnElement[bool]] = []
    reply_filters: list[ColumnElement[bool]] = [
        replies.c.action == "opt_out",
        replies.c.message_id.is_not(None),
    ]
    if since is not None:
        click_filters.append(clicks.c.clicked_at >= since)
        conversion_filters.append(conversions.c.occurred_at >= since)
        complaint_filters.append(complaints.c.complained_at >= since)
        reply_filters.append(replies.c.received_at >= since)
    return {
        "clicks": _follow_up(
            conn,
            scope,
            keys,
            clicks,
            clicks.c.message_id,
            click_filters,
            func.count(clicks.c.message_id.distinct()),
        ),
        "conversions": _follow_up(
            conn,
            scope,
            keys,
            conversions,
            conversions.c.message_id,
            conversion_filters,
            func.count(),
            func.coalesce(func.sum(conversions.c.amount_fen), 0),
        ),
        "opt_outs": _follow_up(
            conn,
            scope,
            keys,
            replies,
            replies.c.message_id,
            reply_filters,
            func.count(replies.c.message_id.distinct()),
        ),
        "complaints": _follow_up(
            conn,
            scope,
            keys,
            complaints,
            complaints.c.message_id,
            complaint_filters,
            func.count(),
        ),
    }


Outcome = tuple[Key, str, str | None, int | None, int, int]
"""Messages of one key, status, reason and latency bucket: (key, status, reason,
bucket, count, cost in 1/10,000 yuan)."""


def outcomes(conn: Connection, scope: Scope, keys: Sequence[str] = ()) -> list[Outcome]:
    """The scan of the messages in ``scope``, per value of ``keys``."""
    _tune_scan(conn)
    width = len(keys)
    return [
        (
            tuple(_plain(value) for value in row[:width]),
            row[width],
            row[width + 1],
            None if row[width + 2] is None else int(row[width + 2]),
            int(row[width + 3]),
            int(row[width + 4] or 0),
        )
        for row in conn.execute(outcome_query(conn, scope, keys))
    ]


def fold(rows: Sequence[Outcome]) -> dict[Key, Tally]:
    """Outcome rows as one tally per key."""
    found: dict[Key, Tally] = {}
    for key, status, reason, bucket, n, cost in rows:
        part = found.setdefault(key, Tally())
        part.by_status[status] += n
        if status == "blocked":
            part.blocked[reason or "unknown"] += n
        elif reason is not None:
            part.failed[reason] += n
        if bucket is not None:
            part.latency[bucket] += n
        part.cost_e4 += cost
    return found


FollowUp = tuple[Key, int, int, int, int, int]
"""What followed the messages of one key: (key, unique clicks by people, conversions,
revenue in fen, opt-outs, complaints)."""


def follow_ups(conn: Connection, scope: Scope, keys: Sequence[str]) -> list[FollowUp]:
    _tune_scan(conn)
    width = len(keys)
    found: dict[Key, list[int]] = {}
    for measure, query in follow_up_queries(conn, scope, keys).items():
        for row in conn.execute(query):
            key = tuple(_plain(value) for value in row[:width])
            values = row[width:]
            if not values[0]:
                continue
            counts = found.setdefault(key, [0, 0, 0, 0, 0])
            if measure == "clicks":
                counts[0] += int(values[0])
            elif measure == "conversions":
                counts[1] += int(values[0])
                counts[2] += int(values[1])
            elif measure == "opt_outs":
                counts[3] += int(values[0])
            else:
                counts[4] += int(values[0])
    return [(key, *counts) for key, counts in found.items()]  # type: ignore[misc]


def add_follow_ups(found: dict[Key, Tally], rows: Sequence[FollowUp]) -> None:
    """Count clicks, conversions, opt-outs and complaints into the tallies."""
    for key, clicked, converted, revenue, opted, complained in rows:
        part = found.setdefault(key, Tally())
        part.clicks += clicked
        part.conversions += converted
        part.revenue_fen += revenue
        part.opt_outs += opted
        part.complaints += complained


def tally(conn: Connection, scope: Scope, keys: Sequence[str] = ()) -> dict[Key, Tally]:
    """The messages of ``scope`` tallied per value of ``keys`` (``()``: one total)."""
    found = fold(outcomes(conn, scope, keys))
    add_follow_ups(found, follow_ups(conn, scope, keys))
    return found


def follow_ups_by_hour(conn: Connection, workspace_id: int, since: datetime) -> dict[Key, Tally]:
    """Clicks by people, conversions, opt-outs and complaints of the workspace since
    ``since``, per UTC hour in which they happened (the dashboard's view)."""
    c, v, r, p = clicks.c, conversions.c, replies.c, complaints.c
    found: dict[Key, Tally] = {}
    measures: list[tuple[str, Select[Any]]] = [
        (
            "clicks",
            _by_hour(conn, c.clicked_at, func.count(c.message_id.distinct())).where(
                c.workspace_id == workspace_id, c.human.is_(True), c.clicked_at >= since
            ),
        ),
        (
            "conversions",
            _by_hour(conn, v.occurred_at, func.count(), func.sum(v.amount_fen)).where(
                v.workspace_id == workspace_id, v.occurred_at >= since
            ),
        ),
        (
            "opt_outs",
            _by_hour(conn, r.received_at, func.count()).where(
                r.workspace_id == workspace_id, r.action == "opt_out", r.received_at >= since
            ),
        ),
        (
            "complaints",
            _by_hour(conn, p.complained_at, func.count()).where(
                p.workspace_id == workspace_id, p.complained_at >= since
            ),
        ),
    ]
    for measure, query in measures:
        for hour, *values in conn.execute(query):
            part = found.setdefault((_plain(hour),), Tally())
            if measure == "conversions":
                part.conversions += int(values[0])
                part.revenue_fen += int(values[1] or 0)
            else:
                setattr(part, measure, int(values[0]))
    return found


def _by_hour(conn: Connection, moment: Any, *measures: Any) -> Select[Any]:
    hour = _utc_hour(conn, moment).label("hour")
    return select(hour, *measures).group_by(hour)


def campaigns_since(conn: Connection, workspace_id: int, since: datetime) -> list[int]:
    """Campaigns of the workspace still going, or started (created) since ``since``."""
    c = campaigns.c
    query = select(c.id).where(
        c.workspace_id == workspace_id,
        or_(
            c.status.in_(("planning", "running", "paused")),
            func.coalesce(c.started_at, c.created_at) >= since,
        ),
    )
    return list(conn.execute(query.order_by(c.id)).scalars())


def unsettled(conn: Connection, workspace_id: int, campaign_id: int) -> bool:
    """Whether a message of the campaign may still change (waiting, in flight, or
    awaiting its receipt)."""
    m = messages.c
    query = (
        select(m.id)
        .where(
            m.campaign_id == campaign_id,
            m.workspace_id == workspace_id,
            m.status.in_((*WAITING, "submitted", "unknown")),
        )
        .limit(1)
    )
    return conn.execute(query).first() is not None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A campaign's report rows as kept: outcomes (settled: they cannot change any
    more) and, when a report kept them too, what followed."""

    computed_at: datetime
    settled: bool
    outcomes: list[Outcome]
    followed_at: datetime | None
    follow_ups: list[FollowUp] | None


def snapshot(conn: Connection, campaign_id: int, grouping: str) -> Snapshot | None:
    """The campaign's kept rows for ``grouping`` ('' for the total), if any."""
    s = report_snapshots.c
    row = conn.execute(
        select(s.computed_at, s.settled, s.outcomes, s.followed_at, s.follow_ups).where(
            s.campaign_id == campaign_id, s.grouping == grouping
        )
    ).one_or_none()
    if row is None:
        return None
    return Snapshot(
        row.computed_at,
        row.settled,
        [(_key_of(key), *rest) for key, *rest in row.outcomes],
        row.followed_at,
        None
        if row.follow_ups is None
        else [(_key_of(key), *rest) for key, *rest in row.follow_ups],
    )


def store_snapshot(
    conn: Connection,
    *,
    workspace_id: int,
    campaign_id: int,
    grouping: str,
    rows: Sequence[Outcome] | None,
    settled: bool,
    followed: Sequence[FollowUp] | None,
    now: datetime,
) -> None:
    """Keep the rows given (None: keep what is kept)."""
    values: dict[str, Any] = {}
    if rows is not None:
        values |= {"computed_at": now, "settled": settled, "outcomes": _document(rows)}
    if followed is not None:
        values |= {"followed_at": now, "follow_ups": _document(followed)}
    if not values:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(report_snapshots)
        .values(
            workspace_id=workspace_id,
            campaign_id=campaign_id,
            grouping=grouping,
            **({"computed_at": now, "settled": False, "outcomes": []} | values),
        )
        .on_conflict_do_update(index_elements=["campaign_id", "grouping"], set_=values)
    )


def _document(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [[[_stored(v) for v in row[0]], *row[1:]] for row in rows]


def _key_of(stored: list[Any]) -> Key:
    return tuple(_plain(v) for v in stored)


def _stored(value: Any) -> Any:
    """A key as JSON: an hour as ``_plain`` reads it back."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:00:00")
    return value


def _plain(value: Any) -> Any:
    """Hour keys as aware UTC datetimes on both databases."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str) and len(value) == 19 and value[13:] == ":00:00":
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def campaign_row(conn: Connection, workspace_id: int, reference: str) -> dict[str, Any] | None:
    """A campaign of the workspace by id (digits) or by name."""
    c = campaigns.c
    query = select(c.id, c.name, c.status, c.started_at, c.created_at).where(
        c.workspace_id == workspace_id
    )
    row = None
    if reference.isdigit():
        row = conn.execute(query.where(c.id == int(reference))).one_or_none()
    if row is None:
        row = conn.execute(query.where(c.name == reference)).one_or_none()
    return None if row is None else dict(row._mapping)


def recent_campaigns(conn: Connection, *, since: datetime) -> list[tuple[int, int]]:
    """(workspace, campaign) of campaigns running, or started since ``since``."""
    c = campaigns.c
    query = (
        select(c.workspace_id, c.id)
        .where(or_(c.status == "running", c.started_at >= since))
        .order_by(c.workspace_id, c.id)
    )
    return [(workspace_id, campaign_id) for workspace_id, campaign_id in conn.execute(query)]


def channel_names(conn: Connection, workspace_id: int) -> dict[int, str]:
    query = select(channels.c.id, channels.c.name).where(channels.c.workspace_id == workspace_id)
    return {channel_id: name for channel_id, name in conn.execute(query)}


def campaign_names(conn: Connection, workspace_id: int) -> dict[int, str]:
    query = select(campaigns.c.id, campaigns.c.name).where(campaigns.c.workspace_id == workspace_id)
    return {campaign_id: name for campaign_id, name in conn.execute(query)}


def workspace_timezone(conn: Connection, workspace_id: int) -> str:
    return str(
        conn.execute(
            select(workspaces.c.timezone).where(workspaces.c.id == workspace_id)
        ).scalar_one()
    )


def journey_id_of(conn: Connection, workspace_id: int, name: str) -> int | None:
    found = conn.execute(
        select(journeys.c.id).where(
            journeys.c.workspace_id == workspace_id, journeys.c.name == name
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


def contact_id_of(conn: Connection, workspace_id: int, phone: str) -> int | None:
    """The contact of a normalised number: the index on (contact_id, due_at) then finds
    its messages."""
    found = conn.execute(
        select(contacts.c.id).where(
            contacts.c.workspace_id == workspace_id, contacts.c.phone == phone
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


def message_log(
    conn: Connection,
    *,
    workspace_id: int,
    campaign_id: int | None,
    statuses: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    journey_id: int | None = None,
    contact_id: int | None = None,
    by_creation: bool = False,
) -> Iterator[Any]:
    """The workspace's messages, oldest first, streamed in batches; ``since`` and
    ``until`` bound the due time, or with ``by_creation`` the creation time."""
    m = messages.c
    query = (
        select(
            m.id,
            m.phone,
            campaigns.c.name.label("campaign"),
            m.variant,
            m.status,
            func.coalesce(m.block_reason, m.error_code).label("reason"),
            channels.c.name.label("channel"),
            m.parts,
            m.cost_e4,
            m.due_at,
            m.submitted_at,
            m.done_at,
            m.text,
        )
        .select_from(
            messages.outerjoin(campaigns, campaigns.c.id == m.campaign_id).outerjoin(
                channels, channels.c.id == m.channel_id
            )
        )
        .where(m.workspace_id == workspace_id)
        .order_by(m.id)
    )
    if campaign_id is not None:
        query = query.where(m.campaign_id == campaign_id)
    if journey_id is not None:
        query = query.where(m.journey_id == journey_id)
    if contact_id is not None:
        query = query.where(m.contact_id == contact_id)
    if statuses:
        query = query.where(m.status.in_(statuses))
    moment = m.created_at if by_creation else m.due_at
    if since is not None:
        query = query.where(moment >= since)
    if until is not None:
        query = query.where(moment < until)
    result = conn.execution_options(yield_per=5_000).execute(query)
    for partition in result.partitions():
        yield from partition
