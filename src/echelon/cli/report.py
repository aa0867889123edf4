"""``echelon report …``: campaign reports, the dashboard, channel health, exports,
thresholds and alerts, complaint lists, purchase attribution and tracking settings."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from echelon.analytics.complaints import import_complaints
from echelon.analytics.exports import (
    dashboard_table,
    export_messages,
    report_table,
    write_table,
)
from echelon.analytics.models import METRIC_LABELS, GroupBy, Judgement, Metrics, Status
from echelon.analytics.reports import (
    CampaignReport,
    campaign_report,
    channel_health,
    dashboard,
    get_thresholds,
    list_alerts,
    record_alerts,
    set_min_sample,
    set_threshold,
)
from echelon.audience.phone import Carrier
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json
from echelon.errors import InvalidInput
from echelon.tracking.conversions import attribute_purchases
from echelon.tracking.settings import get_tracking_settings, update_tracking_settings

report_app = typer.Typer(no_args_is_help=True)
ExportOption = Annotated[Path | None, typer.Option("--export", help="导出到文件（.csv 或 .xlsx）")]
_STATUS_STYLE = {
    Status.EXCELLENT: "bold green",
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.INSUFFICIENT: "dim",
}


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f}%"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:g} 秒"


def _moment(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{what} {text!r} 应写作 2026-11-11T20:00+08:00") from exc
    if moment.tzinfo is None:
        raise InvalidInput(f"{what} {text!r} 须带时区，例如 2026-11-11T20:00+08:00")
    return moment.astimezone(UTC)


def _rate(text: str | None, what: str) -> float | None:
    """A level typed as 98, 98% or 0.98 (≤ 1 is read as a fraction)."""
    if text is None:
        return None
    try:
        value = Decimal(text.strip().rstrip("%"))
    except InvalidOperation as exc:
        raise InvalidInput(f"{what} {text!r} 应为百分数，例如 98 或 99.5%") from exc
    if text.strip().endswith("%") or value > 1:
        value /= 100
    return float(value)


def _metrics_json(metrics: Metrics) -> dict[str, Any]:
    return asdict(metrics)


def _judgements_json(judgements: list[Judgement]) -> list[dict[str, Any]]:
    return [
        {
            "metric": j.metric,
            "value": j.value,
            "status": j.status.value,
            "pass": j.threshold.passing,
            "excellent": j.threshold.excellent,
        }
        for j in judgements
    ]


def _show_metrics(m: Metrics, judgements: list[Judgement]) -> None:
    status: dict[str, Status] = {j.metric: j.status for j in judgements}

    def judged(metric: str, value: str) -> str:
        found = status.get(metric)
        if found is None:
            return value
        return f"{value} [{_STATUS_STYLE[found]}]{found.label}[/]"

    table = Table(show_header=False)
    table.add_row("计划", str(m.planned))
    table.add_row("等待发送", str(m.waiting))
    blocked = "，".join(f"{k} {v}" for k, v in m.blocked_by_reason.items())
    table.add_row("不发送", f"{m.blocked}" + (f"（{blocked}）" if blocked else ""))
    table.add_row("已发送", str(m.sent))
    table.add_row(
        "送达", f"{m.delivered}，送达率 {judged('delivery_rate', _percent(m.delivery_rate))}"
    )
    failed = "，".join(f"{k} {v}" for k, v in m.failed_by_reason.items())
    table.add_row("失败", f"{m.failed}" + (f"（{failed}）" if failed else ""))
    table.add_row("送达耗时", f"P50 {_seconds(m.latency_p50_s)}，P95 {_seconds(m.latency_p95_s)}")
    table.add_row("点击人数", f"{m.clicks}，点击率 {judged('click_rate', _percent(m.click_rate))}")
    table.add_row(
        "转化", f"{m.conversions}，转化率 {judged('conversion_rate', _percent(m.conversion_rate))}"
    )
    roi = "—" if m.roi is None else f"{m.roi}"
    table.add_row("收入 / 费用 / ROI", f"¥{m.revenue} / ¥{m.cost} / {roi}")
    table.add_row(
        "退订", f"{m.opt_outs}，退订率 {judged('opt_out_rate', _percent(m.opt_out_rate))}"
    )
    table.add_row(
        "投诉", f"{m.complaints}，投诉率 {judged('complaint_rate', _percent(m.complaint_rate))}"
    )
    console.print(table)


def _group_label(report: CampaignReport, label: str) -> str:
    if report.by == "carrier" and label in {c.value for c in Carrier}:
        return Carrier(label).label
    return label


@report_app.command("campaign")
@handle_errors
def campaign(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="活动 ID 或名称")],
    by: Annotated[
        str | None, typer.Option(help="分组：channel、carrier、province、hour、variant")
    ] = None,
    export: ExportOption = None,
    json_output: JsonFlag = False,
) -> None:
    """活动报表：送达、点击、转化、收入、费用、ROI、退订、投诉，与阈值对照；超标生成告警。"""
    context: Context = ctx.obj
    report = campaign_report(
        context.engine, workspace_id=context.workspace.id, campaign=campaign, by=by
    )
    alerts = record_alerts(
        context.engine, workspace_id=context.workspace.id, report=report, now=datetime.now(UTC)
    )
    exported = None
    if export is not None:
        exported = write_table(export, *report_table(report), title=report.campaign)
        context.audit(
            "export", f"report:{report.campaign}", {"rows": exported, "file": str(export), "by": by}
        )
    if json_output:
        print_json(
            {
                "campaign": {
                    "id": report.campaign_id,
                    "name": report.campaign,
                    "status": report.status,
                },
                "by": report.by,
                "total": _metrics_json(report.total),
                "judgements": _judgements_json(report.judgements),
                "groups": [
                    {"key": g.key, "label": g.label, **_metrics_json(g.metrics)}
                    for g in report.groups
                ],
                "alerts": [asdict(a) for a in alerts],
                "exported": None if export is None else {"file": str(export), "rows": exported},
            }
        )
        return
    console.print(f"活动「{report.campaign}」（ID {report.campaign_id}）")
    _show_metrics(report.total, report.judgements)
    if report.groups:
        _show_groups(report)
    for alert in alerts:
        label = METRIC_LABELS[alert.metric]
        console.print(f"[bold red]告警[/] {label} {_percent(alert.value)}：{alert.advice}")
    if export is not None:
        console.print(f"已导出 {exported} 行到 {export}")


def _show_groups(report: CampaignReport) -> None:
    titles: dict[GroupBy, str] = {
        "variant": "版本",
        "channel": "通道",
        "carrier": "运营商",
        "province": "省份",
        "hour": "发送时段",
    }
    assert report.by is not None
    # Narrow enough for an 80-column terminal; --export and --json carry every figure.
    table = Table(
        titles[report.by],
        "已发送",
        "送达率",
        "点击率",
        "转化率",
        "ROI",
        "退订率",
        "投诉率",
        box=box.SIMPLE_HEAD,
    )
    for g in report.groups:
        m = g.metrics
        table.add_row(
            _group_label(report, g.label),
            str(m.sent),
            _percent(m.delivery_rate),
            _percent(m.click_rate),
            _percent(m.conversion_rate),
            "—" if m.roi is None else str(m.roi),
            _percent(m.opt_out_rate),
            _percent(m.complaint_rate),
        )
    console.print(table)


@report_app.command("dashboard")
@handle_errors
def dashboard_(
    ctx: typer.Context,
    export: ExportOption = None,
    json_output: JsonFlag = False,
) -> None:
    """工作区概览：今天、近 7 天、近 30 天及每日趋势；近 24 小时各通道健康度。"""
    context: Context = ctx.obj
    now = datetime.now(UTC)
    board = dashboard(context.engine, workspace_id=context.workspace.id, now=now)
    health = channel_health(context.engine, workspace_id=context.workspace.id, now=now)
    exported = write_table(export, *dashboard_table(board), title="概览") if export else None
    if json_output:
        print_json(
            {
                "today": _metrics_json(board.today),
                "last_7_days": _metrics_json(board.last_7_days),
                "last_30_days": _metrics_json(board.last_30_days),
                "judgements": _judgements_json(board.judgements),
                "daily": [{"date": day, **_metrics_json(m)} for day, m in board.daily],
                "channels": [asdict(row) for row in health],
                "exported": None if export is None else {"file": str(export), "rows": exported},
            }
        )
        return
    table = Table("", "今天", "近7天", "近30天")
    rows: list[tuple[str, Any]] = [
        ("计划", lambda m: str(m.planned)),
        ("已发送", lambda m: str(m.sent)),
        ("送达率", lambda m: _percent(m.delivery_rate)),
        ("点击率", lambda m: _percent(m.click_rate)),
        ("转化率", lambda m: _percent(m.conversion_rate)),
        ("收入", lambda m: f"¥{m.revenue}"),
        ("费用", lambda m: f"¥{m.cost}"),
        ("ROI", lambda m: "—" if m.roi is None else str(m.roi)),
        ("退订率", lambda m: _percent(m.opt_out_rate)),
        ("投诉率", lambda m: _percent(m.complaint_rate)),
    ]
    for label, cell in rows:
        table.add_row(label, cell(board.today), cell(board.last_7_days), cell(board.last_30_days))
    console.print(table)
    trend = "  ".join(
        f"{day:%m-%d} {_percent(m.delivery_rate)}" for day, m in board.daily[-7:] if m.sent
    )
    if trend:
        console.print(f"近 7 天送达率：{trend}")
    _show_health(health)
    if export is not None:
        console.print(f"已导出 {exported} 行到 {export}")


def _show_health(health: list[Any]) -> None:
    if not health:
        console.print("近 24 小时没有提交到通道的短信")
        return
    table = Table("通道", "时段", "已发送", "送达", "送达率", "P50", "P95")
    for row in health:
        table.add_row(
            row.channel,
            f"{row.hour:%m-%d %H}时",
            str(row.sent),
            str(row.delivered),
            _percent(row.delivery_rate),
            _seconds(row.latency_p50_s),
            _seconds(row.latency_p95_s),
        )
    console.print(table)


@report_app.command("channels")
@handle_errors
def channels(
    ctx: typer.Context,
    hours: Annotated[int, typer.Option(help="统计最近多少小时", min=1, max=744)] = 24,
    json_output: JsonFlag = False,
) -> None:
    """通道健康度：每个通道每小时的送达率和送达耗时。"""
    context: Context = ctx.obj
    health = channel_health(
        context.engine, workspace_id=context.workspace.id, now=datetime.now(UTC), hours=hours
    )
    if json_output:
        print_json([asdict(row) for row in health])
    else:
        _show_health(health)


@report_app.command("messages")
@handle_errors
def messages(
    ctx: typer.Context,
    export: Annotated[Path, typer.Argument(help="导出文件（.csv 或 .xlsx）")],
    campaign: Annotated[str | None, typer.Option(help="活动 ID 或名称")] = None,
    status: Annotated[list[str] | None, typer.Option(help="状态，可重复，如 delivered")] = None,
    since: Annotated[
        str | None, typer.Option(help="计划发送时间起，如 2026-11-01T00:00+08:00")
    ] = None,
    until: Annotated[str | None, typer.Option(help="计划发送时间止（不含）")] = None,
    json_output: JsonFlag = False,
) -> None:
    """导出短信记录（可按活动、状态、时间筛选）。"""
    context: Context = ctx.obj
    written = export_messages(
        context.engine,
        workspace_id=context.workspace.id,
        path=export,
        campaign=campaign,
        statuses=status or [],
        since=_moment(since, "开始时间"),
        until=_moment(until, "结束时间"),
    )
    context.audit(
        "export",
        "messages",
        {"rows": written, "file": str(export), "campaign": campaign, "statuses": status or []},
    )
    if json_output:
        print_json({"file": str(export), "rows": written})
    else:
        console.print(f"已导出 {written} 条短信记录到 {export}")


@report_app.command("alerts")
@handle_errors
def alerts_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="包括已解除的告警")] = False,
    json_output: JsonFlag = False,
) -> None:
    """指标告警：送达率过低、退订或投诉过高……"""
    context: Context = ctx.obj
    found = list_alerts(context.engine, workspace_id=context.workspace.id, open_only=not all_)
    if json_output:
        print_json([asdict(a) for a in found])
        return
    if not found:
        console.print("没有告警")
        return
    table = Table("活动", "指标", "数值", "告警线", "建议", "首次", "解除")
    for a in found:
        table.add_row(
            a.campaign,
            METRIC_LABELS[a.metric],
            _percent(a.value),
            _percent(a.threshold),
            a.advice,
            context.local(a.raised_at),
            context.local(a.resolved_at),
        )
    console.print(table)


@report_app.command("thresholds")
@handle_errors
def thresholds(
    ctx: typer.Context,
    metric: Annotated[
        str | None,
        typer.Argument(
            help="要修改的指标：delivery_rate、click_rate、conversion_rate、complaint_rate、opt_out_rate"
        ),
    ] = None,
    passing: Annotated[str | None, typer.Option("--pass", help="达标线，如 98%")] = None,
    excellent: Annotated[str | None, typer.Option(help="优秀线，如 99.5%")] = None,
    alert: Annotated[str | None, typer.Option(help="告警线，如 95%")] = None,
    min_sample: Annotated[int | None, typer.Option(help="判定所需的最少短信数")] = None,
    json_output: JsonFlag = False,
) -> None:
    """查看或修改指标阈值（达标 / 优秀 / 告警）。"""
    context: Context = ctx.obj
    now = datetime.now(UTC)
    if metric is not None:
        set_threshold(
            context.engine,
            workspace_id=context.workspace.id,
            metric=metric,
            passing=_rate(passing, "达标线"),
            excellent=_rate(excellent, "优秀线"),
            alert=_rate(alert, "告警线"),
            now=now,
        )
    if min_sample is not None:
        set_min_sample(
            context.engine, workspace_id=context.workspace.id, messages=min_sample, now=now
        )
    current = get_thresholds(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json(
            {
                "min_sample": current.min_sample,
                "levels": {k: asdict(v) for k, v in current.levels.items()},
            }
        )
        return
    table = Table("指标", "达标", "优秀", "告警", "方向")
    for name, level in current.levels.items():
        table.add_row(
            METRIC_LABELS[name],
            _percent(level.passing),
            _percent(level.excellent),
            _percent(level.alert),
            "越低越好" if level.lower_is_better else "越高越好",
        )
    console.print(table)
    console.print(f"少于 {current.min_sample} 条短信的指标不作判定")


@report_app.command("complaints")
@handle_errors
def complaints(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="通道投诉名单（CSV 或 XLSX：手机号、投诉时间、通道、备注）")
    ],
    json_output: JsonFlag = False,
) -> None:
    """导入通道投诉名单，并关联到引起投诉的短信。"""
    context: Context = ctx.obj
    report = import_complaints(
        context.engine, workspace_id=context.workspace.id, path=path, now=datetime.now(UTC)
    )
    if json_output:
        print_json(report.to_json())
        return
    console.print(
        f"读取 {report.rows} 行：导入 {report.imported}，重复 {report.duplicates}，"
        f"未找到对应短信 {report.unmatched}，拒绝 {len(report.rejected)}"
    )
    for row, reason in report.rejected[:20]:
        console.print(f"  第 {row} 行：{reason}")


@report_app.command("attribute")
@handle_errors
def attribute(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """把新的购买事件归因到短信（券码 > 最后点击 > 最后送达），生成转化。"""
    context: Context = ctx.obj
    summary = attribute_purchases(
        context.engine, workspace_id=context.workspace.id, now=datetime.now(UTC)
    )
    if json_output:
        print_json(
            {
                "examined": summary.examined,
                "credited": dict(summary.credited),
                "already_credited": summary.already_credited,
            }
        )
        return
    labels = {"coupon": "券码", "click": "点击", "delivery": "送达"}
    credited = "，".join(f"{labels[k]} {v}" for k, v in summary.credited.items()) or "0"
    console.print(
        f"检查购买事件 {summary.examined} 条：归因 {credited}；"
        f"订单已计入 {summary.already_credited}"
    )


@report_app.command("tracking")
@handle_errors
def tracking(
    ctx: typer.Context,
    short_domain: Annotated[str | None, typer.Option(help="短链域名，如 s.example.cn")] = None,
    code_length: Annotated[int | None, typer.Option(help="短链码长度（6–8）")] = None,
    click_window: Annotated[float | None, typer.Option(help="点击归因窗口（小时）")] = None,
    delivery_window: Annotated[float | None, typer.Option(help="送达归因窗口（小时）")] = None,
    json_output: JsonFlag = False,
) -> None:
    """查看或修改短链域名、短链码长度和转化归因窗口。"""
    context: Context = ctx.obj
    if any(v is not None for v in (short_domain, code_length, click_window, delivery_window)):
        settings = update_tracking_settings(
            context.engine,
            workspace_id=context.workspace.id,
            short_domain=short_domain,
            code_length=code_length,
            click_window=None if click_window is None else timedelta(hours=click_window),
            delivery_window=None if delivery_window is None else timedelta(hours=delivery_window),
            now=datetime.now(UTC),
        )
    else:
        settings = get_tracking_settings(context.engine, workspace_id=context.workspace.id)
    document = {
        "short_domain": settings.short_domain,
        "code_length": settings.code_length,
        "short_link_length": settings.link_format.length,
        "example": settings.link_format.url("Ab3xK9Zq"[: settings.code_length]),
        "click_window_hours": settings.click_window.total_seconds() / 3600,
        "delivery_window_hours": settings.delivery_window.total_seconds() / 3600,
    }
    if json_output:
        print_json(document)
        return
    console.print(
        f"短链 {document['example']}（{document['short_link_length']} 字符，计入短信字数）；"
        f"归因：点击后 {document['click_window_hours']:g} 小时内，否则送达后 "
        f"{document['delivery_window_hours']:g} 小时内"
    )
