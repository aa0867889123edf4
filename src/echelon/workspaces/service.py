"""Creating and finding workspaces, and their content settings.

Content settings are what every message of a workspace starts from: the default
signature (unset until the business registers one), the opt-out line marketing
messages end with, and the price plan cost estimates use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from echelon.content.compose import OPT_OUT_TEXTS, InvalidOptOut, validate_signature
from echelon.content.plans import plan_from_json, plan_to_json
from echelon.content.pricing import PricePlan
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


@dataclass(frozen=True, slots=True)
class ContentSettings:
    """A workspace's content defaults; ``signature`` is None until one is set."""

    signature: str | None
    opt_out_text: str
    price_plan: PricePlan


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """Settings before and after an update; ``changed`` names the fields that differ."""

    before: ContentSettings
    after: ContentSettings

    @property
    def changed(self) -> tuple[str, ...]:
        return tuple(
            f.name
            for f in fields(ContentSettings)
            if getattr(self.before, f.name) != getattr(self.after, f.name)
        )


def get_settings(engine: Engine, *, workspace_id: int) -> ContentSettings:
    """The workspace's content settings; ``WorkspaceNotFound`` for an unknown id."""
    with engine.connect() as conn:
        return settings_in(conn, workspace_id=workspace_id)


# Built once: the send API reads it for every message.
_SETTINGS = select(
    workspaces.c.signature, workspaces.c.opt_out_text, workspaces.c.price_plan
).where(workspaces.c.id == bindparam("workspace_id"))


def settings_in(conn: Connection, *, workspace_id: int) -> ContentSettings:
    """The settings, read inside the caller's transaction (template review, preview)."""
    row = conn.execute(_SETTINGS, {"workspace_id": workspace_id}).one_or_none()
    if row is None:
        raise WorkspaceNotFound(str(workspace_id))
    return ContentSettings(row.signature, row.opt_out_text, plan_from_json(row.price_plan))


def update_settings(
    engine: Engine,
    *,
    workspace_id: int,
    signature: str | None = None,
    opt_out_text: str | None = None,
    price_plan: PricePlan | None = None,
) -> SettingsChange:
    """Set the given settings (None leaves one as it is), all validated before any
    is written; a signature, once set, can be replaced but not removed."""
    if signature is not None:
        validate_signature(signature)
    if opt_out_text is not None and opt_out_text not in OPT_OUT_TEXTS:
        raise InvalidOptOut(opt_out_text)
    with engine.begin() as conn:
        before = settings_in(conn, workspace_id=workspace_id)
        after = ContentSettings(
            signature=before.signature if signature is None else signature,
            opt_out_text=before.opt_out_text if opt_out_text is None else opt_out_text,
            price_plan=before.price_plan if price_plan is None else price_plan,
        )
        if after != before:
            conn.execute(
                update(workspaces)
                .where(workspaces.c.id == workspace_id)
                .values(
                    signature=after.signature,
                    opt_out_text=after.opt_out_text,
                    price_plan=plan_to_json(after.price_plan),
                )
            )
    return SettingsChange(before, after)
