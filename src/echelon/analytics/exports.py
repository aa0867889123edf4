"""Exports: any report, and the message log, as CSV (UTF-8 with BOM, so Excel reads the
Chinese) or XLSX, chosen by the file's suffix. The message log is streamed: rows go to
the file as the database yields them, whatever the log's size."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import Engine

from echelon.analytics import queries
from echelon.analytics.models import Metrics
from echelon.analytics.reports import CampaignNotFound, CampaignReport, Dashboard
from echelon.audience.phone import normalise_phone
from echelon.db.outbox import MESSAGE_STATUSES
from echelon.errors import InvalidInput, NotFound

XLSX_MAX_ROWS: Final = 1_048_575  # a sheet's rows, less the header

METRIC_HEADERS: Final = (
    "计划",
    "等待发送",
    "不发送",
    "已取消",
    "已发送",
    "送达",
    "失败",
    "送达率(%)",
    "送达耗时P50(秒)",
    "送达耗时P95(秒)",
    "点击人数",
    "点击率(%)",
    "转化",
    "转化率(%)",
    "收入(元)",
    "费用(元)",
    "ROI",
    "退订",
    "退订率(%)",
    "投诉",
    "投诉率(%)",
    "不发送原因",
    "失败原因",
)
MESSAGE_HEADERS: Final = (
    "短信ID",
    "手机号",
    "活动",
    "版本",
    "状态",
    "原因",
    "通道",
    "计费条数",
    "费用(元)",
    "计划时间",
    "提交时间",
    "完成时间",
    "内容",
)


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 2)


def _reasons(counts: dict[str, int]) -> str:
    return "；".join(f"{reason} {n}" for reason, n in counts.items())


def metric_cells(m: Metrics) -> list[Any]:
    return [
        m.planned,
        m.waiting,
        m.blocked,
        m.cancelled,
        m.sent,
        m.delivered,
        m.failed,
        _percent(m.delivery_rate),
        m.latency_p50_s,
        m.latency_p95_s,
        m.clicks,
        _percent(m.click_rate),
        m.conversions,
        _percent(m.conversion_rate),
        m.revenue,
        m.cost,
        m.roi,
        m.opt_outs,
        _percent(m.opt_out_rate),
        m.complaints,
        _percent(m.complaint_rate),
        _reasons(m.blocked_by_reason),
        _reasons(m.failed_by_reason),
    ]


def report_table(report: CampaignReport) -> tuple[list[str], list[list[Any]]]:
    """A campaign report as rows: one per group, then the total."""
    first = {None: "活动", "variant": "版本", "channel": "通道", "carrier": "运营商"}
    first |= {"province": "省份", "hour": "发送时段"}
    headers = [first[report.by], *METRIC_HEADERS]
    rows = [[group.label, *metric_cells(group.metrics)] for group in report.groups]
    rows.append([f"合计：{report.campaign}", *metric_cells(report.total)])
    return headers, rows


def dashboard_table(board: Dashboard) -> tuple[list[str], list[list[Any]]]:
    """The dashboard as rows: today, 7 and 30 days, then each of the 30 days."""
    headers = ["时间", *METRIC_HEADERS]
    rows = [
        ["今天", *metric_cells(board.today)],
        ["近7天", *metric_cells(board.last_7_days)],
        ["近30天", *metric_cells(board.last_30_days)],
    ]
    rows += [[day.isoformat(), *metric_cells(m)] for day, m in board.daily]
    return headers, rows


def write_table(
    path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "报表"
) -> int:
    """Write ``rows`` under ``headers`` to ``path`` (.csv or .xlsx); the rows written."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        written = 0
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(headers)
            for row in rows:
                writer.writerow(["" if v is None else _text(v) for v in row])
                written += 1
        return written
    if suffix == ".xlsx":
        book = Workbook(write_only=True)
        sheet = book.create_sheet(title[:31])
        sheet.append(list(headers))
        written = 0
        for row in rows:
            if written == XLSX_MAX_ROWS:
                raise InvalidInput(
                    f"超过 Excel 单表上限 {XLSX_MAX_ROWS} 行：请导出为 CSV 或缩小时间范围"
                )
            sheet.append([_cell(v) for v in row])
            written += 1
        book.save(path)
        return written
    raise InvalidInput(f"不支持导出为 {suffix or '(无扩展名)'}：请用 .csv 或 .xlsx")


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return value


def _cell(value: Any) -> Any:
    # Excel has no time zones: times go as the local wall time they were converted to.
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | int | float | str) or value is None:
        return value
    return str(value)


def export_messages(
    engine: Engine,
    *,
    workspace_id: int,
    path: Path,
    campaign: str | None = None,
    statuses: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    journey: str | None = None,
    phone: str | None = None,
    window: Literal["due", "created"] = "due",
) -> int:
    """Write the message log (filtered by campaign, journey, number, statuses and time:
    the due time, or the creation time as the message log pages by) to ``path``; the
    rows written. Times are in the workspace's zone."""
    unknown = set(statuses) - set(MESSAGE_STATUSES)
    if unknown:
        raise InvalidInput(
            f"未知状态 {', '.join(sorted(unknown))}，可用：{', '.join(MESSAGE_STATUSES)}"
        )
    if since is not None and until is not None and until <= since:
        raise InvalidInput("结束时间须晚于开始时间")
    with engine.connect() as conn:
        campaign_id = None
        if campaign is not None:
            found = queries.campaign_row(conn, workspace_id, campaign)
            if found is None:
                raise CampaignNotFound(campaign)
            campaign_id = found["id"]
        journey_id = None
        if journey is not None:
            journey_id = queries.journey_id_of(conn, workspace_id, journey)
            if journey_id is None:
                raise NotFound(f"旅程「{journey}」不存在")
        contact_id = None
        if phone is not None:
            # A number never messaged here has no messages: -1 matches none.
            contact_id = queries.contact_id_of(conn, workspace_id, normalise_phone(phone)) or -1
        zone = ZoneInfo(queries.workspace_timezone(conn, workspace_id))

        def local(moment: datetime | None) -> datetime | None:
            return None if moment is None else moment.astimezone(zone).replace(microsecond=0)

        rows = (
            [
                row.id,
                row.phone,
                row.campaign,
                row.variant,
                row.status,
                row.reason,
                row.channel,
                row.parts,
                (Decimal(row.cost_e4) / 10_000).quantize(Decimal("0.0001")),
                local(row.due_at),
                local(row.submitted_at),
                local(row.done_at),
                row.text,
            ]
            for row in queries.message_log(
                conn,
                workspace_id=workspace_id,
                campaign_id=campaign_id,
                statuses=statuses,
                since=since,
                until=until,
                journey_id=journey_id,
                contact_id=contact_id,
                by_creation=window == "created",
            )
        )
        return write_table(path, MESSAGE_HEADERS, rows, title="短信记录")
