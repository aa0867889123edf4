"""The suppression list: numbers that must not (or may no longer) receive messages.

Kinds: ``opt_out`` (the person said stop), ``blacklist`` (complaints), ``dnc``
(do-not-disturb lists), ``invalid`` (the number cannot receive). Keyed by number, not
by contact: a number can be suppressed before it is ever imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select

from echelon.audience.phone import normalise_phone
from echelon.db.lists import insert_rows
from echelon.db.tables import suppressions
from echelon.errors import InvalidInput, NotFound

KINDS: dict[str, str] = {
    "opt_out": "退订",
    "blacklist": "黑名单（投诉）",
    "dnc": "免打扰名单",
    "invalid": "空号/无效号码",
}


class UnknownSuppressionKind(InvalidInput):
    code = "unknown_suppression_kind"


@dataclass(frozen=True, slots=True)
class Suppression:
    phone: str
    kind: str
    reason: str | None
    source: str
    created_at: datetime


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UnknownSuppressionKind(
            f"屏蔽类型 {kind!r} 未知，可用：" + "，".join(f"{k}（{v}）" for k, v in KINDS.items())
        )
    return kind


def add_suppression(
    engine: Engine,
    *,
    workspace_id: int,
    phone: str,
    kind: str,
    source: str,
    reason: str | None,
    now: datetime,
) -> bool:
    """Suppress ``phone`` as ``kind``; False if it already was (nothing changes then)."""
    check_kind(kind)
    number = normalise_phone(phone)
    with engine.begin() as conn:
        return (
            add_suppressions(
                conn,
                workspace_id=workspace_id,
                phones=[number],
                kind=kind,
                source=source,
                reason=reason,
                now=now,
            )
            == 1
        )


def add_suppressions(
    conn: Connection,
    *,
    workspace_id: int,
    phones: Sequence[str],
    kind: str,
    source: str,
    reason: str | None,
    now: datetime,
) -> int:
    """Suppress normalised ``phones`` inside the caller's transaction; how many were new.

    For other packages' service calls (an opt-out reply, a receipt saying 空号). A number
    another transaction suppresses at the same moment is passed over, not an error: the
    dispatcher's receipt and outcome writes run side by side.
    """
    rows = [
        {"workspace_id": workspace_id, "phone": p, "kind": kind, "reason": reason,
         "source": source, "created_at": now}
        for p in sorted(set(phones))
    ]  # fmt: skip
    return insert_rows(conn, suppressions, rows)


def remove_suppression(engine: Engine, *, workspace_id: int, phone: str, kind: str) -> None:
    check_kind(kind)
    number = normalise_phone(phone)
    with engine.begin() as conn:
        removed = conn.execute(
            delete(suppressions).where(
                suppressions.c.workspace_id == workspace_id,
                suppressions.c.phone == number,
                suppressions.c.kind == kind,
            )
        ).rowcount
    if not removed:
        raise NotFound(f"{number} 不在{KINDS[kind]}中")


def list_suppressions(
    engine: Engine, *, workspace_id: int, kind: str | None = None, limit: int | None = None
) -> list[Suppression]:
    query = (
        select(
            suppressions.c.phone,
            suppressions.c.kind,
            suppressions.c.reason,
            suppressions.c.source,
            suppressions.c.created_at,
        )
        .where(suppressions.c.workspace_id == workspace_id)
        .order_by(suppressions.c.created_at.desc(), suppressions.c.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(suppressions.c.kind == check_kind(kind))
    with engine.connect() as conn:
        return [Suppression(*row) for row in conn.execute(query)]


def suppression_kinds(
    conn: Connection, *, workspace_id: int, phones: Iterable[str]
) -> dict[str, set[str]]:
    """The suppression kinds of each listed number that has any: the check the gate uses."""
    found: dict[str, set[str]] = {}
    phone_list = list(phones)
    for start in range(0, len(phone_list), 5_000):
        rows = conn.execute(
            select(suppressions.c.phone, suppressions.c.kind).where(
                suppressions.c.workspace_id == workspace_id,
                suppressions.c.phone.in_(phone_list[start : start + 5_000]),
            )
        )
        for phone, kind in rows:
            found.setdefault(phone, set()).add(kind)
    return found
