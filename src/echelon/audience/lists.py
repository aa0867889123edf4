"""Contact lists: the named set of contacts an import brought in (a campaign audience)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from echelon.db.tables import contact_lists
from echelon.errors import InvalidInput


def ensure_list(conn: Connection, workspace_id: int, name: str | None, now: datetime) -> int | None:
    """The id of list ``name`` in the workspace, created if missing; None for no name."""
    if name is None:
        return None
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("名单名称不能为空，最多 200 个字符")
    query = select(contact_lists.c.id).where(
        contact_lists.c.workspace_id == workspace_id, contact_lists.c.name == name
    )
    found = conn.execute(query).scalar_one_or_none()
    if found is not None:
        return int(found)
    conn.execute(insert(contact_lists).values(workspace_id=workspace_id, name=name, created_at=now))
    return int(conn.execute(query).scalar_one())
