"""``echelon campaigns …``: create, preview, start, pause, resume, cancel, status, list."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from echelon.campaigns.models import STATUS_LABELS
from echelon.campaigns.rollout import decide_campaign, experiment_report
from echelon.campaigns.service import (
    campaign_status,
    cancel_campaign,
    create_campaign,
    list_campaigns,
    pause_campaign,
    preview_campaign,
    resume_campaign,
    start_campaign,
)
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json, progress_bar
from echelon.compliance.rules import BlockReason
from echelon.errors import InvalidInput

campaigns_app = typer.Typer(no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="活动名称")]


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


def _reasons(blocked: dict[str, int]) -> str:
    return "，".join(
        f"{BlockReason(k).label} {v}" for k, v in sorted(blocked.items(), key=lambda kv: -kv[1])
    )


def _show_plan(summary: dict[str, Any], title: str) -> None:
    console.print(
        f"{title}「{summary['campaign']}」：受众 {summary['audience']}，"
        f"可发送 {summary['planned']}，共 {summary['parts']} 条计费短信，"
        f"预计费用 ¥{summary['cost_yuan']}"
    )
    if summary["blocked"]:
        console.print(f"  不发送：{_reasons(summary['blocked'])}")
    for sample in summary["samples"]:
        console.print(f"  {sample['phone']}  {sample['text']}  （{sample['parts']} 条）")


@campaigns_app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    name: Name,
    template: Annotated[str, typer.Option(help="已审核通过的模板名称")],
    audience: Annotated[
        str,
        typer.Option(help="受众：consenting（有营销同意）、all、tag:标签、list:名单、segment:分群"),
    ] = "consenting",
    send_at: Annotated[str | None, typer.Option(help="发送时间，如 2026-11-11T20:00+08:00")] = None,
    ends_at: Annotated[str | None, typer.Option(help="结束时间：之后不再发送")] = None,
    throttle: Annotated[int | None, typer.Option(help="每秒最多发送条数")] = None,
    budget: Annotated[str | None, typer.Option(help="预算（元）：超出后不再规划")] = None,
    channel: Annotated[str | None, typer.Option(help="优先使用的通道名称")] = None,
    experiment: Annotated[
        str | None,
        typer.Option(
            help="A/B 测试（JSON 或 @文件）：variants 2–5 个版本（name、template、send_at、"
            "link、channel、weight），mode split|test，holdout、test_share、window_hours、"
            "metric、confidence、fallback"
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """新建一个群发活动（草稿），可带 A/B 测试。"""
    context: Context = ctx.obj
    kind, _, value = audience.partition(":")
    spec: dict[str, Any] = {"kind": kind}
    if kind in ("tag", "list", "segment"):
        spec[kind] = value
    try:
        budget_yuan = None if budget is None else Decimal(budget)
    except InvalidOperation as exc:
        raise InvalidInput(f"预算 {budget!r} 应为金额，例如 500 或 99.5") from exc
    created = create_campaign(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        template=template,
        audience=spec,
        send_at=_moment(send_at, "发送时间"),
        ends_at=_moment(ends_at, "结束时间"),
        throttle_per_second=throttle,
        budget_yuan=budget_yuan,
        now=datetime.now(UTC),
        experiment=None if experiment is None else _json_argument(experiment, "A/B 测试"),
        channel=channel,
    )
    if json_output:
        print_json({"name": created.name, "status": created.status, "template": template})
    else:
        console.print(f"已创建活动「{created.name}」（{created.audience.describe()}，草稿）")


@campaigns_app.command("preview")
@handle_errors
def preview(
    ctx: typer.Context,
    name: Name,
    samples: Annotated[int, typer.Option(help="展示的示例条数", min=0, max=50)] = 3,
    json_output: JsonFlag = False,
) -> None:
    """预览：受众人数、不发送的原因、示例短信、条数与费用（不写入任何数据）。"""
    context: Context = ctx.obj
    summary = preview_campaign(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        samples=samples,
        now=datetime.now(UTC),
    )
    if json_output:
        print_json(summary)
    else:
        _show_plan(summary, "预览")


@campaigns_app.command("start")
@handle_errors
def start(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """开始活动：为每位收件人规划短信（不可发送的记录原因）。"""
    context: Context = ctx.obj
    with progress_bar("规划短信", enabled=not json_output) as progress:
        summary = start_campaign(
            context.engine,
            workspace_id=context.workspace.id,
            name=name,
            now=datetime.now(UTC),
            progress=progress,
        )
    context.audit(
        "campaign.start",
        f"campaign:{name}",
        {k: summary[k] for k in ("audience", "planned", "parts", "cost_yuan")},
    )
    if json_output:
        print_json(summary)
    else:
        _show_plan(summary, "已开始")


def _transition(ctx: typer.Context, name: str, json_output: bool, action: str) -> None:
    context: Context = ctx.obj
    operations = {"pause": pause_campaign, "resume": resume_campaign, "cancel": cancel_campaign}
    moved = operations[action](
        context.engine, workspace_id=context.workspace.id, name=name, now=datetime.now(UTC)
    )
    context.audit(f"campaign.{action}", f"campaign:{name}", {"messages": moved})
    if json_output:
        print_json({"campaign": name, "action": action, "messages": moved})
    else:
        verb = {"pause": "暂停", "resume": "恢复", "cancel": "取消"}[action]
        console.print(f"已{verb}活动「{name}」：{moved} 条短信")


@campaigns_app.command("pause")
@handle_errors
def pause(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """暂停：未提交的短信保持等待。"""
    _transition(ctx, name, json_output, "pause")


@campaigns_app.command("resume")
@handle_errors
def resume(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """恢复发送。"""
    _transition(ctx, name, json_output, "resume")


@campaigns_app.command("cancel")
@handle_errors
def cancel(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """取消：所有尚未提交的短信不再发送。"""
    _transition(ctx, name, json_output, "cancel")


@campaigns_app.command("experiment")
@handle_errors
def experiment(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """A/B 测试结果：各版本的到达、点击、转化（95% 置信区间）、结论与理由、对照组提升。"""
    context: Context = ctx.obj
    report = experiment_report(
        context.engine, workspace_id=context.workspace.id, name=name, now=datetime.now(UTC)
    )
    if json_output:
        print_json(report)
    else:
        _show_experiment(report)


@campaigns_app.command("decide")
@handle_errors
def decide(
    ctx: typer.Context,
    name: Name,
    early: Annotated[bool, typer.Option("--early", help="测试窗口结束前就决定")] = False,
    json_output: JsonFlag = False,
) -> None:
    """选出胜出版本并发送给其余受众（发送进程在测试窗口结束后会自动执行）。"""
    context: Context = ctx.obj
    with progress_bar("规划其余受众", enabled=not json_output) as progress:
        report = decide_campaign(
            context.engine,
            workspace_id=context.workspace.id,
            name=name,
            now=datetime.now(UTC),
            early=early,
            progress=progress,
        )
    context.audit("campaign.decide", f"campaign:{name}", report["decision"] or {})
    if json_output:
        print_json(report)
    else:
        _show_experiment(report)


def _show_experiment(report: dict[str, Any]) -> None:
    metric = report["metric"]
    table = Table(title=f"活动「{report['campaign']}」A/B 测试（指标 {metric}）")
    for column in ("版本", "已发送", "已到达", "点击率", "转化率", "指标值", "95% 区间"):
        table.add_column(column)
    for v in report["variants"]:
        low, high = v["metric"]["ci95"]
        table.add_row(
            v["variant"],
            str(v["sent"]),
            str(v["delivered"]),
            _percent(v["click_rate"]["value"]),
            _percent(v["conversion_rate"]["value"]),
            f"{v['metric']['value']:.4g}",
            f"{low:.4g} – {high:.4g}",
        )
    console.print(table)
    decision = report["decision"] or report["interim"]
    if report["decision"]:
        console.print(f"结论：{decision['reason']}")
    elif decision:
        console.print(f"目前（未定）：{decision['reason']}；决定时间 {report['decide_at']}")
    if report["holdout"]:
        held, messaged = report["holdout"]["holdout"], report["holdout"]["messaged"]
        console.print(
            f"对照组 {held['contacts']} 人购买率 {_percent(held['rate'])}，"
            f"收到短信 {messaged['contacts']} 人购买率 {_percent(messaged['rate'])}，"
            f"提升 {report['holdout']['lift'] * 100:+.2f} 个百分点"
        )
    if "rollout" in report:
        console.print(f"已为其余受众规划 {report['rollout']['planned']} 条")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _json_argument(text: str, what: str) -> dict[str, Any]:
    """JSON given inline or as @file; a clear error naming ``what`` otherwise."""
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"{what}：无法读取文件 {text[1:]}（{exc.strerror}）") from exc
    try:
        document = json.loads(source)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what}不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列") from exc
    if not isinstance(document, dict):
        raise InvalidInput(f"{what}应为 JSON 对象 {{...}}")
    return document


@campaigns_app.command("status")
@handle_errors
def status(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """各状态条数、不发送与失败原因、费用。"""
    context: Context = ctx.obj
    report = campaign_status(context.engine, workspace_id=context.workspace.id, name=name)
    if json_output:
        print_json(report)
        return
    campaign = report["campaign"]
    console.print(f"活动「{campaign['name']}」{STATUS_LABELS[campaign['status']]}")
    console.print("  " + "，".join(f"{k} {v}" for k, v in sorted(report["by_status"].items())))
    if report["blocked"]:
        console.print(f"  不发送：{_reasons(report['blocked'])}")
    if report["failed"]:
        console.print("  失败：" + "，".join(f"{k} {v}" for k, v in report["failed"].items()))
    console.print(f"  计费 {report['parts']} 条，费用 ¥{report['cost_yuan']}")


@campaigns_app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """全部活动（最新在前）。"""
    context: Context = ctx.obj
    found = list_campaigns(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json(
            [
                {
                    "name": c.name,
                    "status": c.status,
                    "template": c.template,
                    "audience": c.audience.model_dump(exclude_none=True),
                    "created_at": c.created_at,
                }
                for c in found
            ]
        )
        return
    table = Table("活动", "状态", "模板", "受众", "创建时间")
    for c in found:
        table.add_row(
            c.name,
            STATUS_LABELS[c.status],
            c.template,
            c.audience.describe(),
            f"{c.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)
