"""Contacts: search by number or name, a contact's profile (consent history, events,
messages, replies), and the import wizard — upload a CSV or XLSX, map its columns,
name the consent source, watch the progress, download the rejected rows."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from echelon.audience.contacts import count_contacts, export_contacts, get_contact
from echelon.audience.importing import CONTACT_COLUMNS, ContactImportOptions, import_contacts
from echelon.audience.records import search_contacts
from echelon.console import charts
from echelon.console.imports import ImportJob, overrides
from echelon.console.queries import inbox
from echelon.console.web import Console
from echelon.dispatch.log import message_page
from echelon.workspaces.service import Workspace

PAGE_SIZE = 50
IMPORT_BATCH = 5_000


def register(router: APIRouter, console: Console) -> None:
    @router.get("/contacts")
    def contacts(request: Request, q: str = "", tag: str = "", after_id: int = 0) -> Response:
        page = console.page(request, "contacts:read")
        found = search_contacts(
            console.engine,
            workspace_id=page.workspace_id,
            text=q or None,
            tag=tag.strip() or None,
            after_id=max(after_id, 0),
            limit=PAGE_SIZE,
        )
        summary = count_contacts(console.engine, workspace_id=page.workspace_id)
        carriers = {page.t.label("carrier", code): n for code, n in summary["by_carrier"].items()}
        return console.render(
            request,
            "contacts/list.html",
            {
                "q": q,
                "tag": tag,
                "contacts": found,
                "summary": summary,
                "carrier_chart": charts.pie_chart(carriers),
                "next_after_id": found[-1].id if len(found) == PAGE_SIZE else None,
            },
            page=page,
        )

    @router.get("/contacts/view")
    def contact(request: Request, phone: str) -> Response:
        page = console.page(request, "contacts:read")
        profile = get_contact(console.engine, workspace_id=page.workspace_id, phone=phone)
        sent = []
        if page.may("messages:read"):
            sent = message_page(
                console.engine, workspace_id=page.workspace_id, phone=profile.phone, limit=50
            )
        replies = inbox(console.engine, workspace_id=page.workspace_id, phone=profile.phone)
        return console.render(
            request,
            "contacts/view.html",
            {"contact": profile, "messages": sent, "replies": replies},
            page=page,
        )

    @router.get("/contacts/export")
    def export(request: Request) -> Response:
        page = console.page(request, "contacts:read")
        handle, name = tempfile.mkstemp(prefix="echelon-export-", suffix=".csv")
        os.close(handle)
        path = Path(name)
        try:
            rows = export_contacts(console.engine, workspace_id=page.workspace_id, path=path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        console.audit(page, "export", "contacts", {"rows": rows, "format": "csv"})
        stamp = page.now.strftime("%Y%m%d-%H%M%S")
        return FileResponse(
            path,
            media_type="text/csv; charset=utf-8",
            filename=f"contacts-{stamp}.csv",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )

    # -- the import wizard -------------------------------------------------------------

    @router.get("/contacts/import")
    def import_start(request: Request) -> Response:
        page = console.page(request, "contacts:write")
        return console.render(request, "contacts/import_upload.html", {}, page=page)

    @router.post("/contacts/import")
    def import_upload(request: Request, file: Annotated[UploadFile, File()]) -> Response:
        page = console.page(request, "contacts:write")
        job = console.imports.upload(
            workspace_id=page.workspace_id,
            filename=file.filename or "",
            stream=file.file,
            now=datetime.now(UTC),
        )
        return console.redirect(f"/contacts/import/map?job={job.id}")

    @router.get("/contacts/import/map")
    def import_map(request: Request, job: str) -> Response:
        page = console.page(request, "contacts:write")
        found = console.imports.get(job, workspace_id=page.workspace_id)
        return console.render(
            request,
            "contacts/import_map.html",
            {"job": found, "fields": list(CONTACT_COLUMNS)},
            page=page,
        )

    @router.post("/contacts/import/run")
    def import_run(request: Request) -> Response:
        page = console.page(request, "contacts:write")
        form = console.form_text(request)
        found = console.imports.get(form.get("job", ""), workspace_id=page.workspace_id)
        chosen = {
            header: form.get(f"map.{index}", "") for index, header in enumerate(found.headers)
        }
        options = ContactImportOptions(
            columns=overrides(found.headers, chosen),
            consent_source=_text(form.get("consent_source")),
            consent_proof=_text(form.get("consent_proof")),
            list_name=_text(form.get("list_name")),
            rejects_path=found.directory / "rejects.csv",
            batch_size=IMPORT_BATCH,
        )
        workspace = Workspace(
            page.workspace.id, page.workspace.slug, page.workspace.name, page.workspace.timezone
        )

        def run(path: Path, progress: Any) -> Any:
            report = import_contacts(
                console.engine,
                workspace=workspace,
                path=path,
                options=options,
                now=datetime.now(UTC),
                progress=progress,
            )
            if options.consent_source and report.extra.get("consent_granted"):
                console.audit(
                    page,
                    "consent.grant",
                    "contacts:import",
                    {"source": options.consent_source, "file": found.filename},
                )
            return report

        console.imports.start(found, run)
        return console.redirect(f"/contacts/import/status?job={found.id}")

    @router.get("/contacts/import/status")
    def import_status(request: Request, job: str) -> Response:
        page = console.page(request, "contacts:write")
        found = console.imports.get(job, workspace_id=page.workspace_id)
        template = "contacts/_import_progress.html" if page.htmx else "contacts/import_status.html"
        return console.render(request, template, {"job": found}, page=page)

    @router.get("/contacts/import/rejects")
    def import_rejects(request: Request, job: str) -> Response:
        page = console.page(request, "contacts:write")
        found: ImportJob = console.imports.get(job, workspace_id=page.workspace_id)
        path = found.rejects_path
        if path is None or not path.is_file():
            return console.error(request, page.t("import.no_rejects"), 404)
        return FileResponse(
            path,
            media_type="text/csv; charset=utf-8",
            filename=f"{Path(found.filename).stem}.rejects.csv",
        )


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None
