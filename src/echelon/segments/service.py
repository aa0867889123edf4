"""Segment service: create (from JSON or a preset), edit, delete, show, list, count,
members, export; and, for campaigns, snapshots and live evaluation inside their transaction.

One transaction per public function; ``now`` is always passed in, so a count says who
was a member at that moment, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Row

from echelon.audience.phone import Carrier
from echelon.errors import EchelonError, InvalidInput, NotFound
from echelon.segments import queries
from echelon.segments.compiler import Scope, segment_predicate
from echelon.segments.models import (
    InvalidDefinition,
    LiveSegment,
    Node,
    SegmentUsers,
    definition_json,
    parse_definition,
    referenced_segments,
    replace_references,
)
from echelon.segments.presets import get_preset

_EXPORT_BATCH = 10_000
EXPORT_COLUMNS = ("phone", "name", "gender", "province", "city", "carrier", "created_at")


class SegmentNotFound(NotFound):
    code = "segment_not_found"

    def __init__(self, ref: int | str) -> None:
        super().__init__(f"分群「{ref}」不存在")


class SegmentInUse(EchelonError):
    code = "segment_in_use"
    http_status = 409

    def __init__(self, name: str, users: SegmentUsers) -> None:
        named = [
            f"{what}{'、'.join(f'「{n}」' for n in names)}"
            for what, names in (
                ("活动", users.campaigns),
                ("自动旅程", users.journeys),
                ("分群", users.segments),
            )
            if names
        ]
        super().__init__(f"分群「{name}」正在被使用，不能删除：{'；'.join(named)}")
        self.users = users


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    name: str
    description: str | None
    definition: dict[str, Any]
    preset: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SegmentCount:
    """The live size of a segment, and where its members are."""

    total: int
    by_carrier: dict[str, int] = field(default_factory=dict)
    by_province: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    phone: str
    name: str | None
    gender: str | None
    province: str | None
    city: str | None
    carrier: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: int
    size: int


def create_segment(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    definition: object,
    description: str | None = None,
    now: datetime,
) -> Segment:
    """Save a new segment; its definition is validated and its references resolved."""
    node = parse_definition(definition)
    return _create(engine, workspace_id, name, node, description, None, now)


def create_from_preset(
    engine: Engine,
    *,
    workspace_id: int,
    preset: str,
    name: str | None = None,
    params: Mapping[str, str] | None = None,
    now: datetime,
) -> Segment:
    """Save an editable copy of a built-in preset (named after it unless ``name``)."""
    chosen = get_preset(preset)
    node = chosen.definition(params)
    return _create(
        engine, workspace_id, name or chosen.name, node, chosen.description, chosen.key, now
    )


def edit_segment(
    engine: Engine,
    *,
    workspace_id: int,
    segment: int | str,
    definition: object | None = None,
    name: str | None = None,
    description: str | None = None,
    now: datetime,
) -> Segment:
    """Change a segment's definition, name or description; a definition that would
    make segments refer to each other in a circle is refused."""
    with engine.begin() as conn:
        row = _get_row(conn, workspace_id, segment)
        values: dict[str, Any] = {"updated_at": now}
        if name is not None:
            values["name"] = _valid_name(conn, workspace_id, name, row.id)
        if description is not None:
            values["description"] = _valid_description(description)
        if definition is not None:
            node = _resolved(conn, workspace_id, parse_definition(definition))
            _check_no_cycle(conn, workspace_id, row.id, node)
            values["definition"] = definition_json(node)
        queries.update_segment(conn, row.id, **values)
        return _segment(_get_row(conn, workspace_id, row.id))


def delete_segment(engine: Engine, *, workspace_id: int, segment: int | str) -> Segment:
    """Delete a segment no campaign, journey or other segment names (``SegmentInUse``
    lists those that do); snapshots already taken of it stay with their campaigns."""
    with engine.begin() as conn:
        row = _get_row(conn, workspace_id, segment)
        users = queries.segment_users(conn, workspace_id, row.id)
        if users:
            raise SegmentInUse(row.name, users)
        queries.delete_segment(conn, workspace_id, row.id)
        return _segment(row)


def get_segment(engine: Engine, *, workspace_id: int, segment: int | str) -> Segment:
    with engine.connect() as conn:
        return _segment(_get_row(conn, workspace_id, segment))


def list_segments(engine: Engine, *, workspace_id: int) -> list[Segment]:
    with engine.connect() as conn:
        return [_segment(row) for row in queries.segment_rows(conn, workspace_id)]


def count_segment(
    engine: Engine,
    *,
    workspace_id: int,
    segment: int | str | None = None,
    definition: object | None = None,
    now: datetime,
) -> SegmentCount:
    """The live size of a saved segment (or of an unsaved ``definition``) at ``now``,
    with its members by carrier and by province, from one query."""
    with engine.connect() as conn:
        node, scope = _evaluated(conn, workspace_id, segment, definition, now)
        rows = queries.count_by_place(conn, node, scope)
    by_carrier: Counter[str] = Counter()
    by_province: Counter[str] = Counter()
    for carrier, province, n in rows:
        by_carrier[carrier or "unknown"] += n
        by_province[province or "unknown"] += n
    return SegmentCount(
        total=sum(by_carrier.values()),
        by_carrier=dict(by_carrier.most_common()),
        by_province=dict(by_province.most_common()),
    )


def list_members(
    engine: Engine,
    *,
    workspace_id: int,
    segment: int | str | None = None,
    definition: object | None = None,
    now: datetime,
    after_id: int = 0,
    limit: int = 50,
) -> list[Member]:
    """Up to ``limit`` members with a contact id above ``after_id``, by id: pass the
    last id back for the next page."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput("每页人数须在 1–10000 之间")
    with engine.connect() as conn:
        node, scope = _evaluated(conn, workspace_id, segment, definition, now)
        rows = queries.member_page(conn, node, scope, after_id=after_id, limit=limit)
    return [Member(**row._mapping) for row in rows]


def export_members(
    engine: Engine,
    *,
    workspace_id: int,
    segment: int | str,
    path: Path,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write every member at ``now`` to a CSV (UTF-8 with BOM, for Excel); the count."""
    written = 0
    with engine.connect() as conn, path.open("w", encoding="utf-8-sig", newline="") as handle:
        node, scope = _evaluated(conn, workspace_id, segment, None, now)
        total = 0
        if progress:
            total = sum(n for _, _, n in queries.count_by_place(conn, node, scope))
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for batch in queries.stream_members(conn, node, scope, batch=_EXPORT_BATCH):
            writer.writerows(_export_row(row) for row in batch)
            written += len(batch)
            if progress:
                progress(len(batch), total)
    return written


# ---------------------------------------------------------------- for campaigns


def segment_id_in(conn: Connection, *, workspace_id: int, segment: int | str) -> int:
    """The id of the segment ``segment`` names (an id or a name)."""
    return int(_get_row(conn, workspace_id, segment).id)


def snapshot_in(
    conn: Connection,
    *,
    workspace_id: int,
    segment_id: int,
    campaign_id: int | None,
    now: datetime,
) -> Snapshot:
    """Freeze who is a member at ``now``, in the caller's transaction (a campaign
    start): from then on its audience reads the snapshot, so it does not shift."""
    node, scope = _evaluated(conn, workspace_id, segment_id, None, now)
    snapshot_id, size = queries.take_snapshot(
        conn,
        scope=scope,
        node=node,
        definition=definition_json(node),
        segment_id=segment_id,
        campaign_id=campaign_id,
    )
    return Snapshot(snapshot_id, size)


def live_segment_in(
    conn: Connection, *, workspace_id: int, segment_id: int, now: datetime
) -> LiveSegment:
    """The segment bound to ``now`` with what it refers to: a campaign preview."""
    node, scope = _evaluated(conn, workspace_id, segment_id, None, now)
    return LiveSegment(
        segment_id=segment_id,
        definition=node,
        segments=dict(scope.segments),
        now=now,
        timezone=scope.timezone,
    )


# ---------------------------------------------------------------- helpers


def _create(
    engine: Engine,
    workspace_id: int,
    name: str,
    node: Node,
    description: str | None,
    preset: str | None,
    now: datetime,
) -> Segment:
    with engine.begin() as conn:
        node = _resolved(conn, workspace_id, node)
        segment_id = queries.insert_segment(
            conn,
            workspace_id,
            name=_valid_name(conn, workspace_id, name, None),
            description=None if description is None else _valid_description(description),
            definition=definition_json(node),
            preset=preset,
            created_at=now,
            updated_at=now,
        )
        return _segment(_get_row(conn, workspace_id, segment_id))


def _valid_name(conn: Connection, workspace_id: int, name: str, own_id: int | None) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("分群名称须为 1–100 个字")
    existing = queries.find_segment(conn, workspace_id, name)
    if existing is not None and existing.name == name and existing.id != own_id:
        raise InvalidInput(f"分群「{name}」已存在")
    return name


def _valid_description(description: str) -> str | None:
    description = description.strip()
    if len(description) > 500:
        raise InvalidInput("分群说明最多 500 个字")
    return description or None


def _get_row(conn: Connection, workspace_id: int, ref: int | str) -> Row[Any]:
    row = queries.find_segment(conn, workspace_id, ref)
    if row is None:
        raise SegmentNotFound(ref)
    return row


def _resolved(conn: Connection, workspace_id: int, node: Node) -> Node:
    """``node`` with each referenced segment (id or name) written as its id."""
    ids: dict[int | str, int] = {}
    for ref in referenced_segments(node):
        row = queries.find_segment(conn, workspace_id, ref)
        if row is None:
            raise InvalidDefinition(f"分群定义有误：引用的分群「{ref}」不存在")
        ids[ref] = row.id
    return replace_references(node, ids) if ids else node


def _referenced(conn: Connection, workspace_id: int, node: Node) -> dict[int, Node]:
    """Every segment ``node`` refers to, directly or through others, by id."""
    found: dict[int, Node] = {}
    pending = [ref for ref in referenced_segments(node) if isinstance(ref, int)]
    while pending:
        stored = queries.definitions_by_id(
            conn, workspace_id, [i for i in pending if i not in found]
        )
        missing = [i for i in pending if i not in found and i not in stored]
        if missing:
            raise InvalidDefinition(f"引用的分群 #{missing[0]} 已不存在，请修改分群定义")
        pending = []
        for segment_id, definition in stored.items():
            found[segment_id] = parse_definition(definition)
            pending.extend(
                ref
                for ref in referenced_segments(found[segment_id])
                if isinstance(ref, int) and ref not in found
            )
    return found


def _check_no_cycle(conn: Connection, workspace_id: int, own_id: int, node: Node) -> None:
    if own_id in _referenced(conn, workspace_id, node):
        raise InvalidDefinition("分群定义有误：分群之间不能循环引用（它直接或间接引用了自己）")


def _evaluated(
    conn: Connection,
    workspace_id: int,
    segment: int | str | None,
    definition: object | None,
    now: datetime,
) -> tuple[Node, Scope]:
    if (segment is None) == (definition is None):
        raise InvalidInput("请指定一个分群，或给出分群定义")
    if segment is not None:
        node = parse_definition(_get_row(conn, workspace_id, segment).definition)
    else:
        node = _resolved(conn, workspace_id, parse_definition(definition))
    scope = Scope(
        workspace_id=workspace_id,
        now=now,
        timezone=queries.workspace_timezone(conn, workspace_id),
        segments=_referenced(conn, workspace_id, node),
    )
    # Compiling checks what validation cannot (a reference circle through stored ones).
    segment_predicate(node, scope)
    return node, scope


def _segment(row: Row[Any]) -> Segment:
    return Segment(
        id=row.id,
        name=row.name,
        description=row.description,
        definition=row.definition,
        preset=row.preset,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _export_row(row: Row[Any]) -> list[Any]:
    return [
        row.phone,
        row.name or "",
        {"male": "男", "female": "女"}.get(row.gender or "", ""),
        row.province or "",
        row.city or "",
        Carrier(row.carrier).label if row.carrier else "",
        row.created_at.isoformat(),
    ]
