"""``echelon demo``: the main job end to end on an embedded SQLite database.

Today it covers the audience half: a generated shop's customer file (with planted bad
numbers and customers who declined marketing) is imported with its consent, a list of
opt-outs is applied, and the reachable audience is counted. The sending half joins it
as the pipeline lands.
"""

from __future__ import annotations

import csv
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from echelon.audience.contacts import count_contacts
from echelon.audience.importing import ContactImportOptions, import_contacts, import_suppressions
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.runtime.sample import SampleShape, sample_phones, write_contacts_csv, write_phone_list
from echelon.workspaces.service import create_workspace

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    directory: Path
    contacts: int = 10_000
    opt_outs: int = 200


def run_demo(options: DemoOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run the demo in a fresh ``directory`` and return its summary."""
    started = time.perf_counter()
    if options.directory.exists():
        shutil.rmtree(options.directory)
    options.directory.mkdir(parents=True)
    engine = create_db_engine(f"sqlite:///{options.directory / 'echelon.db'}")
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="demo", name="示例商城")
    now = datetime.now(UTC)

    customers = options.directory / "customers.csv"
    write_contacts_csv(customers, SampleShape(contacts=options.contacts))
    imported = import_contacts(
        engine,
        workspace=workspace,
        path=customers,
        options=ContactImportOptions(consent_source="checkout_checkbox", list_name="会员"),
        now=now,
        progress=progress,
    )
    opt_out_file = options.directory / "opt_outs.csv"
    write_phone_list(opt_out_file, sample_phones(customers, options.opt_outs, seed=11), "回复TD")
    opted_out = import_suppressions(
        engine,
        workspace=workspace,
        path=opt_out_file,
        kind="opt_out",
        source="demo",
        columns={},
        rejects_path=None,
        now=now,
    )
    counts = count_contacts(engine, workspace_id=workspace.id)
    engine.dispose()
    return {
        "database": str(options.directory / "echelon.db"),
        "rows": imported.rows,
        "imported": imported.imported,
        "rejected": imported.rejected,
        "rejected_by_reason": _reasons(imported.rejects_file),
        "marketing_consent": counts["marketing_consent"],
        "opt_outs": opted_out.imported,
        "marketing_reachable": counts["marketing_reachable"],
        "by_carrier": counts["by_carrier"],
        "seconds": round(time.perf_counter() - started, 2),
    }


def _reasons(rejects_file: str | None) -> dict[str, int]:
    if rejects_file is None:
        return {}
    with Path(rejects_file).open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    # The reason reads 号码 'x' 无效：位数太少 — count by what follows the colon.
    return dict(Counter(row[1].split("：", 1)[-1] for row in rows))
