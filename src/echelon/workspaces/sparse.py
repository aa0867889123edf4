"""Settings a workspace keeps sparse, as JSON: only what it changed is stored, so a
better default reaches every workspace that never chose (compliance, dispatch)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Connection, update

from echelon.db.tables import workspaces
from echelon.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


def save_sparse(
    conn: Connection,
    *,
    workspace_id: int,
    column: Column[Any],
    current: M,
    changes: dict[str, Any],
    what: str,
) -> M:
    """Merge ``changes`` into ``current`` and store what differs from the defaults;
    invalid values change nothing and are named (``what`` says which settings)."""
    try:
        merged = type(current).model_validate(
            {**current.model_dump(exclude_defaults=True), **changes}
        )
    except ValidationError as exc:
        problems = "；".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"{what}无效：{problems}") from exc
    stored = merged.model_dump(mode="json", exclude_defaults=True) or None
    conn.execute(
        update(workspaces).where(workspaces.c.id == workspace_id).values({column.name: stored})
    )
    return merged
