"""The import wizard's jobs: an uploaded file (contacts, events and orders, or a
suppression list) kept in a private directory, its header and first rows for mapping
columns, then the import running on a thread while the page polls its progress, and
the rejected rows kept for download.

Jobs live in this process's memory (``echelon serve`` is one process); a job and its
files are dropped a day after upload, or when the process stops.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from secrets import token_urlsafe
from typing import BinaryIO, Final, Literal

from echelon.audience.importing import (
    CONTACT_COLUMNS,
    EVENT_COLUMNS,
    SUPPRESSION_COLUMNS,
    ImportReport,
)
from echelon.audience.tabular import map_columns, open_sheet
from echelon.console.i18n import Problem
from echelon.errors import EchelonError

KEEP: Final = timedelta(days=1)
MAX_UPLOAD_BYTES: Final = 200 * 1024 * 1024
SAMPLE_ROWS: Final = 5
_SUFFIXES: Final = frozenset({".csv", ".txt", ".tsv", ".xlsx", ".xlsm"})
_CHUNK: Final = 1 << 20

JobState = Literal["uploaded", "running", "done", "failed"]
ImportKind = Literal["contacts", "events", "suppressions"]
Columns = Mapping[str, tuple[str, ...]]
# Each kind's fields (with the headers the importer knows them by), and the fields
# without which the importer refuses the file.
COLUMNS: Final[dict[ImportKind, Columns]] = {
    "contacts": CONTACT_COLUMNS,
    "events": EVENT_COLUMNS,
    "suppressions": SUPPRESSION_COLUMNS,
}
REQUIRED: Final[dict[ImportKind, tuple[str, ...]]] = {
    "contacts": ("phone",),
    "events": ("phone", "type", "occurred_at"),
    "suppressions": ("phone",),
}
Runner = Callable[[Path, Callable[[int, int], None]], ImportReport]


class JobNotFound(Problem):
    """No such job in this workspace (gone, expired, another workspace's, another kind)."""

    code = "not_found"
    http_status = 404

    def __init__(self) -> None:
        super().__init__("import.not_found")


@dataclass
class ImportJob:
    id: str
    workspace_id: int
    filename: str
    directory: Path
    path: Path
    headers: list[str]
    sample: list[list[str]]
    estimated_rows: int
    created_at: datetime
    kind: ImportKind = "contacts"
    state: JobState = "uploaded"
    done_rows: int = 0
    report: ImportReport | None = None
    error: str | None = None
    suggested: dict[str, str] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        """Share of the file read, 0–1 (1 once done)."""
        if self.state == "done":
            return 1.0
        if not self.estimated_rows:
            return 0.0
        return min(1.0, self.done_rows / self.estimated_rows)

    @property
    def rejects_path(self) -> Path | None:
        if self.report is None or self.report.rejects_file is None:
            return None
        return Path(self.report.rejects_file)


def suggested_mapping(headers: list[str], columns: Columns = CONTACT_COLUMNS) -> dict[str, str]:
    """Header → field for the headers the importer recognises by itself."""
    known: dict[str, str] = {}
    for field_name, aliases in columns.items():
        for alias in (field_name, *aliases):
            known[_fold(alias)] = field_name
    found: dict[str, str] = {}
    for header in headers:
        wanted = known.get(_fold(header))
        if wanted is not None and wanted not in found.values():
            found[header] = wanted
    return found


def _fold(name: str) -> str:
    return name.lower().replace(" ", "").replace("_", "").replace("-", "")


def overrides(
    headers: list[str], chosen: Mapping[str, str], columns: Columns = CONTACT_COLUMNS
) -> dict[str, str]:
    """The ``--map`` overrides for a choice of header → field ("" = keep as attribute):
    only headers whose choice differs from what the importer would do by itself, and a
    field chosen twice is an error."""
    fields = [f for f in chosen.values() if f]
    doubled = sorted({f for f in fields if fields.count(f) > 1})
    if doubled:
        raise Problem("import.field_twice", fields="、".join(doubled))
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        raise Problem("import.unknown_field", fields="、".join(unknown))
    automatic = suggested_mapping(headers, columns)
    return {
        header: field_name
        for header, field_name in chosen.items()
        if field_name and header in headers and automatic.get(header) != field_name
    }


def missing_fields(job: ImportJob, mapping: Mapping[str, str]) -> list[str]:
    """The fields ``job``'s kind requires that no column would fill with ``mapping``
    (its ``overrides``): the importer would refuse the whole file."""
    mapped, _ = map_columns(job.headers, COLUMNS[job.kind], mapping)
    return [name for name in REQUIRED[job.kind] if name not in mapped]


class ImportJobs:
    """Jobs by id, each visible only to its workspace."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()

    def upload(
        self,
        *,
        workspace_id: int,
        filename: str,
        stream: BinaryIO,
        now: datetime,
        kind: ImportKind = "contacts",
    ) -> ImportJob:
        """Keep an uploaded file of ``kind`` and read its header and first rows."""
        self._forget_old(now)
        name = Path(filename or "upload.csv").name
        suffix = Path(name).suffix.lower()
        if suffix not in _SUFFIXES:
            raise Problem("import.bad_type", suffix=suffix or "-")
        directory = Path(tempfile.mkdtemp(prefix="echelon-import-", dir=self._root))
        path = directory / f"upload{suffix}"
        try:
            _save(stream, path)
            headers, sample, estimated = _peek(path)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        job = ImportJob(
            id=token_urlsafe(12),
            workspace_id=workspace_id,
            filename=name,
            directory=directory,
            path=path,
            headers=headers,
            sample=sample,
            estimated_rows=estimated,
            created_at=now,
            kind=kind,
            suggested=suggested_mapping(headers, COLUMNS[kind]),
        )
        with self._lock:
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str, *, workspace_id: int, kind: ImportKind = "contacts") -> ImportJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.workspace_id != workspace_id or job.kind != kind:
            raise JobNotFound()
        return job

    def start(self, job: ImportJob, run: Runner) -> None:
        """Run the import on a thread; the job's progress follows it."""
        with self._lock:
            if job.state != "uploaded":
                raise Problem("import.already_started")
            job.state = "running"

        def progress(done: int, total: int) -> None:
            job.done_rows += done
            if total:
                job.estimated_rows = total

        def work() -> None:
            try:
                job.report = run(job.path, progress)
                job.state = "done"
            except EchelonError as exc:
                job.error, job.state = exc.message, "failed"
            except Exception as exc:  # shown on the page; the import changed nothing
                job.error, job.state = f"{type(exc).__name__}: {exc}", "failed"

        threading.Thread(target=work, name=f"import-{job.id}", daemon=True).start()

    def _forget_old(self, now: datetime) -> None:
        with self._lock:
            old = [j for j in self._jobs.values() if now - j.created_at > KEEP]
            for job in old:
                if job.state != "running":
                    del self._jobs[job.id]
                    shutil.rmtree(job.directory, ignore_errors=True)


def _save(stream: BinaryIO, path: Path) -> None:
    written = 0
    with path.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            written += len(chunk)
            if written > MAX_UPLOAD_BYTES:
                raise Problem("import.too_large", megabytes=MAX_UPLOAD_BYTES // (1024 * 1024))
            out.write(chunk)
    if written == 0:
        raise Problem("import.empty")


def _peek(path: Path) -> tuple[list[str], list[list[str]], int]:
    sheet = open_sheet(path)
    sample: list[list[str]] = []
    try:
        for _, cells in sheet.rows:
            sample.append(["" if c is None else str(c) for c in cells])
            if len(sample) >= SAMPLE_ROWS:
                break
    finally:
        close = getattr(sheet.rows, "close", None)
        if close is not None:
            close()
    return sheet.headers, sample, sheet.estimated_rows
