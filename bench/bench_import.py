"""Import speed: N generated contacts into SQLite and PostgreSQL, figures printed.

    .venv/bin/python bench/bench_import.py --size 1000000
Target (issue: foundation): 1,000,000 contacts in under 60 s on each database.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.runtime.sample import SampleShape, write_contacts_csv
from echelon.workspaces.service import create_workspace
from support import POSTGRES, scratch_postgres


def measure(url: str, path: Path, size: int, args_batch: int) -> dict[str, float]:
    engine = create_db_engine(url)
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="bench", name="bench")
    options = ContactImportOptions(consent_source="bench", batch_size=args_batch)
    figures: dict[str, float] = {}
    for run in ("first", "again"):
        started = time.perf_counter()
        report = import_contacts(
            engine, workspace=workspace, path=path, options=options, now=datetime.now(UTC)
        )
        seconds = time.perf_counter() - started
        figures[f"{run}_s"] = round(seconds, 2)
        figures[f"{run}_rows_per_s"] = round(size / seconds)
        if run == "first":
            figures["imported"] = report.imported
            figures["rejected"] = report.rejected
        else:
            if report.imported or report.updated:
                raise SystemExit(f"re-import changed rows: {report.to_json()}")
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--batch-size", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        started = time.perf_counter()
        write_contacts_csv(path, SampleShape(contacts=args.size))
        print(f"generated {args.size} rows in {time.perf_counter() - started:.1f}s", flush=True)
        if not args.skip_sqlite:
            sqlite = measure(f"sqlite:///{tmp}/bench.db", path, args.size, args.batch_size)
            print(f"sqlite     size={args.size} {sqlite}", flush=True)
        if args.skip_postgres:
            return
        with scratch_postgres(args.postgres) as url:
            postgres = measure(url, path, args.size, args.batch_size)
        print(f"postgresql size={args.size} {postgres}", flush=True)


if __name__ == "__main__":
    main()
