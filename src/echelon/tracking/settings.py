"""A workspace's tracking settings: its short domain and code length, and the
attribution windows. Workspaces that changed nothing have no row and get the defaults."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select, update

from echelon.db.tracking import tracking_settings
from echelon.tracking.models import TrackingSettings
from echelon.tracking.rules import check_code_length, check_domain, check_window


def settings_in(conn: Connection, *, workspace_id: int) -> TrackingSettings:
    """The settings, read inside the caller's transaction."""
    t = tracking_settings.c
    row = conn.execute(
        select(t.short_domain, t.code_length, t.click_window_s, t.delivery_window_s).where(
            t.workspace_id == workspace_id
        )
    ).one_or_none()
    if row is None:
        return TrackingSettings()
    return TrackingSettings(
        short_domain=row.short_domain,
        code_length=row.code_length,
        click_window=timedelta(seconds=row.click_window_s),
        delivery_window=timedelta(seconds=row.delivery_window_s),
    )


def get_tracking_settings(engine: Engine, *, workspace_id: int) -> TrackingSettings:
    with engine.connect() as conn:
        return settings_in(conn, workspace_id=workspace_id)


def update_tracking_settings(
    engine: Engine,
    *,
    workspace_id: int,
    short_domain: str | None = None,
    code_length: int | None = None,
    click_window: timedelta | None = None,
    delivery_window: timedelta | None = None,
    now: datetime,
) -> TrackingSettings:
    """Set the given settings (None keeps one), all checked before any is written.

    Links already sent keep their domain and length: a change applies to links
    issued from now on.
    """
    domain = None if short_domain is None else check_domain(short_domain)
    if code_length is not None:
        check_code_length(code_length)
    if click_window is not None:
        check_window(click_window, "点击归因窗口")
    if delivery_window is not None:
        check_window(delivery_window, "送达归因窗口")
    with engine.begin() as conn:
        before = settings_in(conn, workspace_id=workspace_id)
        after = TrackingSettings(
            short_domain=domain or before.short_domain,
            code_length=code_length or before.code_length,
            click_window=click_window or before.click_window,
            delivery_window=delivery_window or before.delivery_window,
        )
        values = {
            "short_domain": after.short_domain,
            "code_length": after.code_length,
            "click_window_s": int(after.click_window.total_seconds()),
            "delivery_window_s": int(after.delivery_window.total_seconds()),
            "updated_at": now,
        }
        exists = conn.execute(
            select(tracking_settings.c.workspace_id).where(
                tracking_settings.c.workspace_id == workspace_id
            )
        ).one_or_none()
        if exists is None:
            conn.execute(insert(tracking_settings).values(workspace_id=workspace_id, **values))
        else:
            conn.execute(
                update(tracking_settings)
                .where(tracking_settings.c.workspace_id == workspace_id)
                .values(**values)
            )
    return after
