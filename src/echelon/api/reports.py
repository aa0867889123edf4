"""Reports (campaign metrics, the dashboard, channel health, alerts) and exports (the
message log, contacts) as CSV or XLSX files. Every export is audited."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from echelon.access.models import Principal
from echelon.analytics.exports import export_messages
from echelon.analytics.reports import (
    CampaignNotFound,
    campaign_report,
    channel_health,
    dashboard,
    list_alerts,
)
from echelon.api.auth import State, require
from echelon.api.encoding import plain
from echelon.api.params import AwareTime, NamePath, audit, id_or_name
from echelon.audience.contacts import export_contacts
from echelon.db.outbox import MESSAGE_STATUSES

router = APIRouter(tags=["报表与导出"])

Analyst = Annotated[Principal, Depends(require("reports:read"))]
ContactsReader = Annotated[Principal, Depends(require("contacts:read"))]
Format = Literal["csv", "xlsx"]
Status = Literal[MESSAGE_STATUSES]  # type: ignore[valid-type]
_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get("/reports/campaigns/{name}", summary="活动效果：送达、点击、转化、费用、ROI（可分组）")
def campaign(
    name: NamePath,
    principal: Analyst,
    state: State,
    by: Literal["variant", "channel", "carrier", "province", "hour"] | None = None,
) -> Any:
    return plain(
        campaign_report(
            state.engine,
            workspace_id=principal.workspace_id,
            campaign=id_or_name(name, CampaignNotFound),
            by=by,
        )
    )


@router.get("/reports/dashboard", summary="概览：今天、近 7 天、近 30 天")
def overview(principal: Analyst, state: State) -> Any:
    return plain(
        dashboard(state.engine, workspace_id=principal.workspace_id, now=datetime.now(UTC))
    )


@router.get("/reports/channels", summary="通道健康度：每小时送达率与时延")
def channels(
    principal: Analyst,
    state: State,
    hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24,
) -> Any:
    return plain(
        channel_health(
            state.engine, workspace_id=principal.workspace_id, now=datetime.now(UTC), hours=hours
        )
    )


@router.get("/reports/alerts", summary="指标告警")
def alerts(principal: Analyst, state: State, open_only: bool = False) -> Any:
    return plain(
        list_alerts(state.engine, workspace_id=principal.workspace_id, open_only=open_only)
    )


def _export(
    state: Any,
    principal: Principal,
    what: str,
    fmt: Format,
    write: Callable[[Path], int],
    detail: dict[str, Any],
) -> FileResponse:
    handle, name = tempfile.mkstemp(prefix="echelon-export-", suffix=f".{fmt}")
    os.close(handle)
    path = Path(name)
    try:
        rows = write(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    audit(state, principal, "export", what, detail | {"rows": rows, "format": fmt})
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return FileResponse(
        path,
        media_type=_MEDIA[fmt],
        filename=f"{what}-{stamp}.{fmt}",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.get(
    "/exports/messages",
    summary="导出短信记录（CSV 或 XLSX）",
    response_class=FileResponse,
)
def messages(
    principal: Analyst,
    state: State,
    format: Format = "csv",
    campaign: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    since: Annotated[AwareTime | None, Query()] = None,
    until: Annotated[AwareTime | None, Query()] = None,
) -> FileResponse:
    return _export(
        state,
        principal,
        "messages",
        format,
        lambda path: export_messages(
            state.engine,
            workspace_id=principal.workspace_id,
            path=path,
            campaign=None if campaign is None else id_or_name(campaign, CampaignNotFound),
            statuses=status or (),
            since=since,
            until=until,
        ),
        {"campaign": campaign, "status": status},
    )


@router.get(
    "/exports/contacts", summary="导出全部联系人（CSV，可再导入）", response_class=FileResponse
)
def contacts(principal: ContactsReader, state: State) -> FileResponse:
    return _export(
        state,
        principal,
        "contacts",
        "csv",
        lambda path: export_contacts(state.engine, workspace_id=principal.workspace_id, path=path),
        {},
    )
