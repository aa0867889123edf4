"""The message log: every message of the workspace, newest first, filtered by campaign,
journey, status, number and creation time, a page at a time (keyset on the log's
index, so the thousandth page costs what the first does), and the filtered log
exported as CSV or XLSX by the export the API and CLI use."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from echelon.analytics.exports import export_messages
from echelon.campaigns.service import list_campaigns
from echelon.console.forms import parse_local
from echelon.console.web import Console, Page
from echelon.db.outbox import MESSAGE_STATUSES
from echelon.dispatch.log import LoggedMessage, message_page
from echelon.errors import EchelonError
from echelon.journeys.service import list_journeys

PAGE_SIZE: Final = 50
FORMATS: Final = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
TEXT_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class LogFilter:
    """The log's filters as typed in the page's form (and carried by its links)."""

    campaign: str = ""
    journey: str = ""
    status: str = ""
    phone: str = ""
    since: str = ""
    until: str = ""

    def query(self, **more: object) -> str:
        values = {k: v for k, v in asdict(self).items() if v}
        values.update({k: str(v) for k, v in more.items()})
        return urlencode(values)


def register(router: APIRouter, console: Console) -> None:
    @router.get("/messages")
    def log(
        request: Request,
        campaign: str = "",
        journey: str = "",
        status: str = "",
        phone: str = "",
        since: str = "",
        until: str = "",
        before_id: int | None = None,
    ) -> Response:
        page = console.page(request, "messages:read")
        chosen = _filter(campaign, journey, status, phone, since, until)
        found: list[LoggedMessage] = []
        message = None
        status_code = 200
        try:
            found = message_page(
                console.engine,
                workspace_id=page.workspace_id,
                before_id=before_id,
                limit=PAGE_SIZE,
                **_arguments(page, chosen),
            )
        except EchelonError as exc:
            message, status_code = console.word(request, exc), exc.http_status
        context: dict[str, Any] = {
            "filter": chosen,
            "messages": found,
            "message": message,
            "first_page": before_id is not None,
            "next_before_id": found[-1].id if len(found) == PAGE_SIZE else None,
            "statuses": MESSAGE_STATUSES,
            "campaigns": [
                c.name for c in list_campaigns(console.engine, workspace_id=page.workspace_id)
            ],
            "journeys": [
                j.name for j in list_journeys(console.engine, workspace_id=page.workspace_id)
            ],
            "may_export": page.may("reports:read"),
        }
        return console.render(request, "messages.html", context, page=page, status_code=status_code)

    @router.get("/messages/export")
    def export(
        request: Request,
        format: str = "csv",
        campaign: str = "",
        journey: str = "",
        status: str = "",
        phone: str = "",
        since: str = "",
        until: str = "",
    ) -> Response:
        page = console.page(request, "reports:read")
        chosen = _filter(campaign, journey, status, phone, since, until)
        arguments = _arguments(page, chosen)
        kind = format if format in FORMATS else "csv"
        handle, name = tempfile.mkstemp(prefix="echelon-export-", suffix=f".{kind}")
        os.close(handle)
        path = Path(name)
        try:
            rows = export_messages(
                console.engine,
                workspace_id=page.workspace_id,
                path=path,
                window="created",
                **arguments,
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        filters = {k: v for k, v in asdict(chosen).items() if v}
        console.audit(page, "export", "messages", {**filters, "rows": rows, "format": kind})
        stamp = page.now.strftime("%Y%m%d-%H%M%S")
        return FileResponse(
            path,
            media_type=FORMATS[kind],
            filename=f"messages-{stamp}.{kind}",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )


def _filter(*values: str) -> LogFilter:
    """The filters as typed, trimmed and bounded (a longer value names nothing real)."""
    return LogFilter(*(value.strip()[:TEXT_LIMIT] for value in values))


def _arguments(page: Page, chosen: LogFilter) -> dict[str, Any]:
    """The filters as the log's service takes them; a time is in the workspace's zone."""
    since: datetime | None = parse_local(chosen.since, page.zone)
    until: datetime | None = parse_local(chosen.until, page.zone)
    return {
        "campaign": chosen.campaign or None,
        "journey": chosen.journey or None,
        "statuses": [chosen.status] if chosen.status else [],
        "phone": chosen.phone or None,
        "since": since,
        "until": until,
    }
