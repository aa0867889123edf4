"""Creating and finding workspaces."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, insert, select

from echelon.db.tables import workspaces
from echelon.errors import InvalidInput, NotFound

DEFAULT_TIMEZONE = "Asia/Shanghai"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class WorkspaceNotFound(NotFound):
    code = "workspace_not_found"

    def __init__(self, slug: str) -> None:
        super().__init__(f"工作区 {slug!r} 不存在；先运行 `echelon init` 或检查 ECHELON_WORKSPACE")


@dataclass(frozen=True, slots=True)
class Workspace:
    id: int
    slug: str
    name: str
    timezone: str


def create_workspace(
    engine: Engine, *, slug: str, name: str, timezone: str = DEFAULT_TIMEZONE
) -> tuple[Workspace, bool]:
    """The workspace ``slug``, created if missing; the flag says whether it was created."""
    if not _SLUG.match(slug):
        raise InvalidInput(f"工作区标识 {slug!r} 无效：只能用小写字母、数字、- 和 _")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"时区 {timezone!r} 无效，例如 Asia/Shanghai") from exc
    with engine.begin() as conn:
        existing = _find(conn, slug)
        if existing is not None:
            return existing, False
        conn.execute(
            insert(workspaces).values(
                slug=slug, name=name, timezone=timezone, created_at=datetime.now(UTC)
            )
        )
        created = _find(conn, slug)
    assert created is not None
    return created, True


def get_workspace(engine: Engine, *, slug: str) -> Workspace:
    with engine.connect() as conn:
        found = _find(conn, slug)
    if found is None:
        raise WorkspaceNotFound(slug)
    return found


def _find(conn: Connection, slug: str) -> Workspace | None:
    row = conn.execute(
        select(workspaces.c.id, workspaces.c.slug, workspaces.c.name, workspaces.c.timezone).where(
            workspaces.c.slug == slug
        )
    ).one_or_none()
    return None if row is None else Workspace(row.id, row.slug, row.name, row.timezone)
