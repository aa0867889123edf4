"""SQL of segments: saved definitions, what names them, member counts and pages,
snapshots, and the clause a campaign's audience filter uses. Every statement is
scoped to one workspace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from echelon.db.journeys import journey_versions, journeys
from echelon.db.outbox import campaigns
from echelon.db.segments import segment_snapshot_members, segment_snapshots, segments
from echelon.db.tables import contacts, workspaces
from echelon.segments.compiler import Scope, members_query, segment_predicate
from echelon.segments.models import (
    LiveSegment,
    SegmentUsers,
    parse_definition,
    referenced_segments,
)

MEMBER_COLUMNS = (
    contacts.c.id,
    contacts.c.phone,
    contacts.c.name,
    contacts.c.gender,
    contacts.c.province,
    contacts.c.city,
    contacts.c.carrier,
    contacts.c.created_at,
)


def find_segment(conn: Connection, workspace_id: int, ref: int | str) -> Row[Any] | None:
    """The segment ``ref`` names: an id, or a name (a name made of digits that is no
    segment's name is read as an id)."""
    s = segments.c
    query = select(segments).where(s.workspace_id == workspace_id)
    if isinstance(ref, str):
        row = conn.execute(query.where(s.name == ref.strip())).one_or_none()
        if row is not None or not ref.strip().isdigit():
            return row
        ref = int(ref)
    return conn.execute(query.where(s.id == ref)).one_or_none()


def segment_rows(conn: Connection, workspace_id: int) -> Sequence[Row[Any]]:
    return conn.execute(
        select(segments)
        .where(segments.c.workspace_id == workspace_id)
        .order_by(segments.c.name, segments.c.id)
    ).all()


def insert_segment(conn: Connection, workspace_id: int, **values: Any) -> int:
    inserted = conn.execute(
        insert(segments).values(workspace_id=workspace_id, **values).returning(segments.c.id)
    )
    return int(inserted.scalar_one())


def update_segment(conn: Connection, segment_id: int, **values: Any) -> None:
    conn.execute(update(segments).where(segments.c.id == segment_id).values(**values))


def delete_segment(conn: Connection, workspace_id: int, segment_id: int) -> None:
    conn.execute(
        delete(segments).where(segments.c.workspace_id == workspace_id, segments.c.id == segment_id)
    )


def segment_users(conn: Connection, workspace_id: int, segment_id: int) -> SegmentUsers:
    """The campaigns, journeys and other segments of the workspace that name the segment
    (by id, as each stores it): a campaign's audience, a journey's trigger or ``segment``
    condition in any of its versions, a segment's ``segment`` condition."""
    using_campaigns = [
        row.name
        for row in conn.execute(
            select(campaigns.c.name, campaigns.c.audience)
            .where(campaigns.c.workspace_id == workspace_id)
            .order_by(campaigns.c.name)
        )
        if row.audience.get("kind") == "segment" and row.audience.get("segment") == segment_id
    ]
    using_journeys = sorted(
        {
            row.name
            for row in conn.execute(
                select(journeys.c.name, journey_versions.c.definition).where(
                    journeys.c.workspace_id == workspace_id,
                    journey_versions.c.journey_id == journeys.c.id,
                )
            )
            if segment_id in _journey_segments(row.definition)
        }
    )
    using_segments = [
        row.name
        for row in segment_rows(conn, workspace_id)
        if row.id != segment_id
        and segment_id in referenced_segments(parse_definition(row.definition))
    ]
    return SegmentUsers(tuple(using_campaigns), tuple(using_journeys), tuple(using_segments))


def _journey_segments(definition: dict[str, Any]) -> set[object]:
    """The segments a stored journey definition names (journeys.GRAMMAR): its trigger's
    (or scheduled audience's) and its ``segment`` conditions'."""
    named: set[object] = {definition.get("trigger", {}).get("segment")}
    for step in definition.get("steps", ()):
        condition = step.get("if") or {}
        if condition.get("kind") == "segment":
            named.add(condition.get("segment"))
    return named


def definitions_by_id(conn: Connection, workspace_id: int, ids: Sequence[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = conn.execute(
        select(segments.c.id, segments.c.definition).where(
            segments.c.workspace_id == workspace_id, segments.c.id.in_(ids)
        )
    )
    return {row.id: row.definition for row in rows}


def workspace_timezone(conn: Connection, workspace_id: int) -> str:
    return str(
        conn.execute(
            select(workspaces.c.timezone).where(workspaces.c.id == workspace_id)
        ).scalar_one()
    )


def _without_jit(conn: Connection) -> None:
    # PostgreSQL costs a per-contact sub-query by its worst case and then spends longer
    # compiling the plan (JIT) than running it; these queries are short, like imports.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")


def count_by_place(
    conn: Connection, node: Any, scope: Scope
) -> list[tuple[str | None, str | None, int]]:
    """Members counted by (carrier, province), in one query."""
    query = members_query(node, scope, contacts.c.carrier, contacts.c.province, func.count())
    query = query.group_by(contacts.c.carrier, contacts.c.province)
    _without_jit(conn)
    return [(carrier, province, int(n)) for carrier, province, n in conn.execute(query)]


def member_page(
    conn: Connection, node: Any, scope: Scope, *, after_id: int, limit: int
) -> list[Row[Any]]:
    """The next ``limit`` members by contact id after ``after_id`` (keyset pages)."""
    query = (
        members_query(node, scope, *MEMBER_COLUMNS)
        .where(contacts.c.id > after_id)
        .order_by(contacts.c.id)
        .limit(limit)
    )
    _without_jit(conn)
    return list(conn.execute(query))


def stream_members(
    conn: Connection, node: Any, scope: Scope, *, batch: int
) -> Iterator[Sequence[Row[Any]]]:
    query = members_query(node, scope, *MEMBER_COLUMNS).order_by(contacts.c.id)
    _without_jit(conn)
    result = conn.execution_options(yield_per=batch).execute(query)
    yield from result.partitions()


def take_snapshot(
    conn: Connection,
    *,
    scope: Scope,
    node: Any,
    definition: dict[str, Any],
    segment_id: int | None,
    campaign_id: int | None,
) -> tuple[int, int]:
    """Write who is a member now, set-based (INSERT … SELECT); (snapshot id, size)."""
    snapshot_id = int(
        conn.execute(
            insert(segment_snapshots)
            .values(
                workspace_id=scope.workspace_id,
                segment_id=segment_id,
                campaign_id=campaign_id,
                definition=definition,
                size=0,
                taken_at=scope.now,
            )
            .returning(segment_snapshots.c.id)
        ).scalar_one()
    )
    members = members_query(
        node, scope, literal(snapshot_id), contacts.c.id, contacts.c.workspace_id
    )
    _without_jit(conn)
    size = conn.execute(
        insert(segment_snapshot_members).from_select(
            ["snapshot_id", "contact_id", "workspace_id"], members
        )
    ).rowcount
    conn.execute(
        update(segment_snapshots).where(segment_snapshots.c.id == snapshot_id).values(size=size)
    )
    return snapshot_id, size


def audience_clause(
    workspace_id: int, *, snapshot: int | None, live: LiveSegment | None
) -> ColumnElement[bool]:
    """A campaign's segment audience as a predicate over ``contacts``: its snapshot once
    it has started, else the segment evaluated live (a preview)."""
    if snapshot is not None:
        m = segment_snapshot_members.c
        return exists().where(
            m.snapshot_id == snapshot,
            m.contact_id == contacts.c.id,
            m.workspace_id == workspace_id,
        )
    if live is None:
        raise ValueError("a segment audience needs its snapshot or a live evaluation")
    scope = Scope(workspace_id, live.now, live.timezone, live.segments)
    return segment_predicate(live.definition, scope)
