"""The import wizard, for each file a marketer brings: contacts, events and orders
(purchases with their amounts and order numbers, cart adds …), and suppression lists
(numbers that must not be messaged, as opt-outs, blacklist or do-not-contact).

Upload a CSV or XLSX, map its columns, give what the kind needs (a consent source; a
suppression kind), watch the progress, download the rejected rows. Each runs the
audience package's import — the one ``echelon contacts|events|suppress import`` runs —
needs ``contacts:write`` and is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, Response

from echelon.audience.importing import (
    ContactImportOptions,
    ImportReport,
    import_contacts,
    import_events,
    import_suppressions,
)
from echelon.console.i18n import Problem
from echelon.console.imports import COLUMNS, ImportJob, ImportKind, missing_fields, overrides
from echelon.console.web import Console, Page
from echelon.workspaces.service import Workspace

IMPORT_BATCH: Final = 5_000
# What a person may put on a number by hand (``invalid`` comes from receipts).
ADDABLE_SUPPRESSIONS: Final = ("opt_out", "blacklist", "dnc")
IMPORT_SOURCE: Final = "console_import"
SOURCE_LIMIT: Final = 64

Runner = Callable[[Path, Callable[[int, int], None]], ImportReport]


@dataclass(frozen=True, slots=True)
class Flow:
    """One kind of file: where its pages are, and the catalogue keys of its words."""

    kind: ImportKind
    base: str
    title: str  # the pages' title
    hint: str  # what the file must hold
    map_step: str  # the second step's name
    columns_hint: str  # how the columns were read
    unmapped: str  # what a column that fills no field becomes
    imported: str  # the count of rows the import added
    after: str = "/contacts"  # where to look at the result
    after_label: str = "import.see_contacts"


FLOWS: Final = (
    Flow(
        kind="contacts",
        base="/contacts/import",
        title="contacts.import",
        hint="import.file_hint",
        map_step="import.step_map",
        columns_hint="import.columns_hint",
        unmapped="import.as_attribute",
        imported="import.imported",
    ),
    Flow(
        kind="events",
        base="/contacts/events/import",
        title="import.events_title",
        hint="import.events_hint",
        map_step="import.step_map_events",
        columns_hint="import.columns_hint_events",
        unmapped="import.as_property",
        imported="import.imported_events",
    ),
    Flow(
        kind="suppressions",
        base="/contacts/suppressions/import",
        title="import.suppressions_title",
        hint="import.suppressions_hint",
        map_step="import.step_map_suppressions",
        columns_hint="import.columns_hint_suppressions",
        unmapped="import.ignored",
        imported="import.imported_suppressions",
    ),
)


def register(router: APIRouter, console: Console) -> None:
    for flow in FLOWS:
        _register(router, console, flow)


def _register(router: APIRouter, console: Console, flow: Flow) -> None:
    def job_of(page: Page, job_id: str) -> ImportJob:
        return console.imports.get(job_id, workspace_id=page.workspace_id, kind=flow.kind)

    def upload_form(request: Request) -> Response:
        page = console.page(request, "contacts:write")
        return console.render(request, "contacts/import_upload.html", {"flow": flow}, page=page)

    def upload(request: Request, file: Annotated[UploadFile, File()]) -> Response:
        page = console.page(request, "contacts:write")
        job = console.imports.upload(
            workspace_id=page.workspace_id,
            filename=file.filename or "",
            stream=file.file,
            now=datetime.now(UTC),
            kind=flow.kind,
        )
        return console.redirect(f"{flow.base}/map?job={job.id}")

    def mapping(request: Request, job: str) -> Response:
        page = console.page(request, "contacts:write")
        found = job_of(page, job)
        context = {
            "flow": flow,
            "job": found,
            "fields": list(COLUMNS[flow.kind]),
            "kinds": ADDABLE_SUPPRESSIONS,
        }
        return console.render(request, "contacts/import_map.html", context, page=page)

    def run(request: Request) -> Response:
        page = console.page(request, "contacts:write")
        form = console.form_text(request)
        found = job_of(page, form.get("job", ""))
        chosen = {
            header: form.get(f"map.{index}", "") for index, header in enumerate(found.headers)
        }
        columns = overrides(found.headers, chosen, COLUMNS[flow.kind])
        missing = missing_fields(found, columns)
        if missing:
            raise Problem("import.need_field", field=page.t(f"field.{missing[0]}"))
        runner = _RUNNERS[flow.kind](console, page, found, columns, form)
        console.imports.start(found, runner)
        return console.redirect(f"{flow.base}/status?job={found.id}")

    def status(request: Request, job: str) -> Response:
        page = console.page(request, "contacts:write")
        found = job_of(page, job)
        template = "contacts/_import_progress.html" if page.htmx else "contacts/import_status.html"
        return console.render(request, template, {"flow": flow, "job": found}, page=page)

    def rejects(request: Request, job: str) -> Response:
        page = console.page(request, "contacts:write")
        found = job_of(page, job)
        path = found.rejects_path
        if path is None or not path.is_file():
            return console.error(request, page.t("import.no_rejects"), 404)
        return FileResponse(
            path,
            media_type="text/csv; charset=utf-8",
            filename=f"{Path(found.filename).stem}.rejects.csv",
        )

    router.get(flow.base)(upload_form)
    router.post(flow.base)(upload)
    router.get(f"{flow.base}/map")(mapping)
    router.post(f"{flow.base}/run")(run)
    router.get(f"{flow.base}/status")(status)
    router.get(f"{flow.base}/rejects")(rejects)


def _workspace(page: Page) -> Workspace:
    info = page.workspace
    return Workspace(info.id, info.slug, info.name, info.timezone)


def _contacts(
    console: Console, page: Page, job: ImportJob, columns: dict[str, str], form: dict[str, str]
) -> Runner:
    options = ContactImportOptions(
        columns=columns,
        consent_source=_text(form.get("consent_source")),
        consent_proof=_text(form.get("consent_proof")),
        list_name=_text(form.get("list_name")),
        rejects_path=job.directory / "rejects.csv",
        batch_size=IMPORT_BATCH,
    )
    workspace = _workspace(page)

    def run(path: Path, progress: Callable[[int, int], None]) -> ImportReport:
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
                {"source": options.consent_source, "file": job.filename},
            )
        return report

    return run


def _events(
    console: Console, page: Page, job: ImportJob, columns: dict[str, str], form: dict[str, str]
) -> Runner:
    workspace = _workspace(page)

    def run(path: Path, progress: Callable[[int, int], None]) -> ImportReport:
        report = import_events(
            console.engine,
            workspace=workspace,
            path=path,
            columns=columns,
            rejects_path=job.directory / "rejects.csv",
            now=datetime.now(UTC),
            batch_size=IMPORT_BATCH,
            progress=progress,
        )
        console.audit(
            page,
            "events.import",
            "events:import",
            {"file": job.filename, **_counts(report)},
        )
        return report

    return run


def _suppressions(
    console: Console, page: Page, job: ImportJob, columns: dict[str, str], form: dict[str, str]
) -> Runner:
    kind = form.get("kind", "")
    if kind not in ADDABLE_SUPPRESSIONS:
        raise Problem("contact.bad_kind")
    source = form.get("source", "").strip() or IMPORT_SOURCE
    if len(source) > SOURCE_LIMIT:
        raise Problem("contact.too_long", field=page.t("import.source"), limit=SOURCE_LIMIT)
    workspace = _workspace(page)

    def run(path: Path, progress: Callable[[int, int], None]) -> ImportReport:
        report = import_suppressions(
            console.engine,
            workspace=workspace,
            path=path,
            kind=kind,
            source=source,
            columns=columns,
            rejects_path=job.directory / "rejects.csv",
            now=datetime.now(UTC),
            batch_size=IMPORT_BATCH,
            progress=progress,
        )
        console.audit(
            page,
            "suppression.add",
            "suppressions:import",
            {"kind": kind, "source": source, "file": job.filename, **_counts(report)},
        )
        return report

    return run


_RUNNERS: Final[dict[ImportKind, Callable[..., Runner]]] = {
    "contacts": _contacts,
    "events": _events,
    "suppressions": _suppressions,
}


def _counts(report: ImportReport) -> dict[str, Any]:
    return {"rows": report.rows, "imported": report.imported, "rejected": report.rejected}


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None
