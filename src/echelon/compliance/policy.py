"""A workspace's compliance policy: quiet hours and caps, stored as JSON.

Stored sparse: only what a workspace changed is kept, every other value is the
rules' default, so a better default reaches every workspace that never chose.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, bindparam, select

from echelon.compliance.gate import Policy
from echelon.compliance.rules import Caps, QuietHours
from echelon.db.tables import workspaces
from echelon.workspaces.sparse import save_sparse


class PolicySettings(BaseModel):
    """What a workspace may set; durations in hours/seconds, times as HH:MM."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quiet_start: time = time(8, 0)
    quiet_end: time = time(21, 0)
    marketing_max: int = Field(4, ge=1, le=100)
    marketing_window_days: int = Field(30, ge=1, le=366)
    marketing_min_gap_hours: float = Field(24, ge=0, le=24 * 30)
    per_minute: int = Field(1, ge=1)
    per_hour: int = Field(5, ge=1)
    per_day: int = Field(10, ge=1)
    duplicate_window_seconds: int = Field(30, ge=0, le=86_400)

    def policy(self, timezone: str) -> Policy:
        return Policy(
            QuietHours(self.quiet_start, self.quiet_end, timezone),
            Caps(
                marketing_max=self.marketing_max,
                marketing_window=timedelta(days=self.marketing_window_days),
                marketing_min_gap=timedelta(hours=self.marketing_min_gap_hours),
                per_minute=self.per_minute,
                per_hour=self.per_hour,
                per_day=self.per_day,
                duplicate_window=timedelta(seconds=self.duplicate_window_seconds),
            ),
        )


# Built once: the send API reads it for every message.
_SETTINGS = select(workspaces.c.compliance, workspaces.c.timezone).where(
    workspaces.c.id == bindparam("workspace_id")
)


def load_settings(conn: Connection, workspace_id: int) -> tuple[PolicySettings, str]:
    """The workspace's settings and time zone."""
    stored, timezone = conn.execute(_SETTINGS, {"workspace_id": workspace_id}).one()
    return PolicySettings.model_validate(stored or {}), timezone


def load_policy(conn: Connection, workspace_id: int) -> Policy:
    settings, timezone = load_settings(conn, workspace_id)
    return settings.policy(timezone)


def save_settings(conn: Connection, workspace_id: int, changes: dict[str, Any]) -> PolicySettings:
    """Merge ``changes`` into the stored settings; invalid values change nothing."""
    current, _ = load_settings(conn, workspace_id)
    return save_sparse(
        conn,
        workspace_id=workspace_id,
        column=workspaces.c.compliance,
        current=current,
        changes=changes,
        what="合规设置",
    )
