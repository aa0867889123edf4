"""Exports of reports and of the message log, and complaint import, on both databases."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from analytics_support import EVENING, MORNING, NOW, Outbox, fill_outbox
from sqlalchemy import Engine, select

from echelon.analytics.complaints import import_complaints
from echelon.analytics.exports import (
    METRIC_HEADERS,
    dashboard_table,
    export_messages,
    report_table,
    write_table,
)
from echelon.analytics.reports import campaign_report, dashboard
from echelon.db.tracking import complaints
from echelon.errors import InvalidInput
from echelon.workspaces.service import Workspace


@pytest.fixture
def outbox(engine: Engine, workspace: Workspace) -> Outbox:
    return fill_outbox(engine, workspace.id)


def read(path: Path) -> list[list[object]]:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [list(row) for row in csv.reader(handle)]
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_grouped_report_exports_a_row_per_group_and_the_total(
    engine: Engine, outbox: Outbox, tmp_path: Path, suffix: str
) -> None:
    report = campaign_report(
        engine, workspace_id=outbox.workspace_id, campaign="双11", by="variant"
    )
    path = tmp_path / f"report{suffix}"
    assert write_table(path, *report_table(report)) == 3
    rows = read(path)
    assert rows[0] == ["版本", *METRIC_HEADERS]
    assert [row[0] for row in rows[1:]] == ["A", "B", "合计：双11"]
    total = dict(zip(rows[0], rows[3], strict=True))
    as_read = str if suffix == ".csv" else (lambda v: v)
    assert total["已发送"] == as_read(8) and total["送达"] == as_read(5)
    assert total["送达率(%)"] == as_read(62.5)
    assert float(str(total["收入(元)"])) == 150.5
    assert total["不发送原因"] == "no_consent 1；opt_out 1"


def test_the_dashboard_exports_too(engine: Engine, outbox: Outbox, tmp_path: Path) -> None:
    path = tmp_path / "board.xlsx"
    assert (
        write_table(
            path, *dashboard_table(dashboard(engine, workspace_id=outbox.workspace_id, now=NOW))
        )
        == 33
    )
    rows = read(path)
    assert [row[0] for row in rows[1:4]] == ["今天", "近7天", "近30天"]
    assert rows[3][1] == 12 and rows[-1][0] == "2026-11-11"


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_the_message_log_exports_with_filters(
    engine: Engine, outbox: Outbox, tmp_path: Path, suffix: str
) -> None:
    everything = tmp_path / f"all{suffix}"
    assert export_messages(engine, workspace_id=outbox.workspace_id, path=everything) == 12
    delivered = tmp_path / f"delivered{suffix}"
    written = export_messages(
        engine,
        workspace_id=outbox.workspace_id,
        path=delivered,
        campaign="双11",
        statuses=["delivered", "expired"],
    )
    assert written == 6
    rows = read(delivered)
    assert rows[0][:6] == ["短信ID", "手机号", "活动", "版本", "状态", "原因"]
    assert {row[4] for row in rows[1:]} == {"delivered", "expired"}
    first = rows[1]
    # Times in the workspace's zone: A went at 10:00 Shanghai.
    submitted = first[10]
    expected = (
        "2026-11-11 10:00:00+08:00"
        if suffix == ".csv"
        else MORNING.replace(tzinfo=None) + timedelta(hours=8)
    )
    assert submitted == expected
    assert first[6] == "移动一号" and first[12].startswith("【星河商城】")
    window = tmp_path / f"window{suffix}"
    assert (
        export_messages(engine, workspace_id=outbox.workspace_id, path=window, since=EVENING) == 0
    )
    assert (
        export_messages(engine, workspace_id=outbox.workspace_id, path=window, until=EVENING) == 12
    )


def test_bad_export_requests_are_clear_errors(
    engine: Engine, outbox: Outbox, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match=r"\.csv"):
        export_messages(engine, workspace_id=outbox.workspace_id, path=tmp_path / "x.pdf")
    with pytest.raises(InvalidInput, match="sent_ok"):
        export_messages(
            engine, workspace_id=outbox.workspace_id, path=tmp_path / "x.csv", statuses=["sent_ok"]
        )
    with pytest.raises(InvalidInput):
        export_messages(
            engine,
            workspace_id=outbox.workspace_id,
            path=tmp_path / "x.csv",
            since=NOW,
            until=MORNING,
        )


def test_complaints_are_imported_and_tied_to_the_message_that_prompted_them(
    engine: Engine, outbox: Outbox, tmp_path: Path
) -> None:
    path = tmp_path / "complaints.csv"
    phone_of = lambda i: f"+861380000{i:04d}"  # noqa: E731 - as analytics_support makes them
    rows = [
        ["手机号", "投诉时间", "通道", "备注"],
        [phone_of(4), "2026-11-11 21:00", "联通二号", "骚扰"],
        [phone_of(4), "2026-11-11 21:00", "联通二号", "骚扰"],  # the same complaint again
        [phone_of(0), "2026-11-11 09:00", "移动一号", "sent before the message"],
        ["12345", "2026-11-11 21:00", "", ""],
        [phone_of(1), "昨天", "", ""],
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    report = import_complaints(
        engine, workspace_id=outbox.workspace_id, path=path, now=NOW
    ).to_json()
    assert (report["rows"], report["imported"], report["duplicates"], report["unmatched"]) == (
        5,
        2,
        1,
        1,
    )
    assert [r["row"] for r in report["rejected"]] == [5, 6]
    with engine.connect() as conn:
        stored = conn.execute(
            select(complaints.c.phone, complaints.c.message_id, complaints.c.note).order_by(
                complaints.c.id
            )
        ).all()
    assert (stored[1].phone, stored[1].message_id, stored[1].note) == (
        phone_of(4),
        outbox.message_ids[4],
        "骚扰",
    )
    assert stored[2].message_id is None
    again = import_complaints(engine, workspace_id=outbox.workspace_id, path=path, now=NOW)
    assert (again.imported, again.duplicates) == (0, 3)
    report_after = campaign_report(engine, workspace_id=outbox.workspace_id, campaign="双11")
    assert report_after.total.complaints == 2  # the one of the support data, and this one
