"""``echelon workspace show|set``: the content settings every message starts from.

Price plans are edited in parts: ``--price`` is the price per part beyond every
tier (the whole price when there are none); ``--tier UP_TO=PRICE`` (repeatable)
replaces the monthly volume tiers, a bare last ``--tier PRICE`` setting the price
beyond them, ``--tier off`` removing them; ``--peak 20:00-21:00=15`` sets the
peak-hour surcharge in percent, ``--peak off`` removes it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.table import Table

from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json
from echelon.content.compose import OPT_OUT_TEXTS
from echelon.content.plans import parse_peak, parse_price, parse_tiers, plan_to_json
from echelon.content.pricing import PricePlan
from echelon.errors import InvalidInput
from echelon.workspaces.service import ContentSettings, get_settings, update_settings

workspace_app = typer.Typer(no_args_is_help=True)

_FIELD_LABELS = {"signature": "签名", "opt_out_text": "退订语", "price_plan": "价格方案"}


def settings_json(context: Context, settings: ContentSettings) -> dict[str, Any]:
    workspace = context.workspace
    return {
        "workspace": workspace.slug,
        "name": workspace.name,
        "timezone": workspace.timezone,
        "signature": settings.signature,
        "opt_out_text": settings.opt_out_text,
        "price_plan": plan_to_json(settings.price_plan),
    }


def describe_plan(plan: PricePlan) -> str:
    """每月前 50,000 条 ¥0.06，之后 ¥0.055；20:00–21:00 加价 15%（Asia/Shanghai）"""
    steps = []
    previous = 0
    for tier in plan.tiers:
        where = "每月前" if previous == 0 else f"第 {previous + 1:,} 条起至"
        steps.append(f"{where} {tier.up_to_parts:,} 条 ¥{tier.price}")
        previous = tier.up_to_parts
    steps.append(f"之后 ¥{plan.price_per_part}" if plan.tiers else f"每条 ¥{plan.price_per_part}")
    text = "，".join(steps)
    if plan.peak is not None:
        start, end = plan.peak.start.strftime("%H:%M"), plan.peak.end.strftime("%H:%M")
        text += f"；{start}–{end} 加价 {plan.peak.percent}%"
    return f"{text}（{plan.timezone}）"


def _print_settings(context: Context, settings: ContentSettings) -> None:
    workspace = context.workspace
    table = Table(show_header=False, title=f"工作区 {workspace.slug}（{workspace.name}）")
    table.add_row("时区", workspace.timezone)
    table.add_row("默认签名", f"【{settings.signature}】" if settings.signature else "未设置")
    table.add_row("退订语", settings.opt_out_text)
    table.add_row("价格", describe_plan(settings.price_plan))
    console.print(table)


@workspace_app.command("show")
@handle_errors
def workspace_show(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """查看工作区的默认签名、退订语和价格方案。"""
    context: Context = ctx.obj
    settings = get_settings(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json(settings_json(context, settings))
    else:
        _print_settings(context, settings)


@workspace_app.command("set")
@handle_errors
def workspace_set(
    ctx: typer.Context,
    signature: Annotated[
        str | None, typer.Option(help="默认短信签名（2–16 字，不带【】），如 星河商城")
    ] = None,
    opt_out: Annotated[
        str | None, typer.Option(help="营销短信的退订语：" + "、".join(OPT_OUT_TEXTS))
    ] = None,
    price: Annotated[
        str | None, typer.Option(help="每条单价（元），超出所有阶梯后的价格，如 0.05")
    ] = None,
    tier: Annotated[
        list[str] | None,
        typer.Option(
            help="月度阶梯：条数=单价，可重复，如 --tier 50000=0.06 --tier 0.055；off 取消"
        ),
    ] = None,
    peak: Annotated[
        str | None, typer.Option(help="高峰加价：开始-结束=百分比，如 20:00-21:00=15；off 取消")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """修改工作区的默认签名、退订语或价格方案（只改给出的项）。"""
    context: Context = ctx.obj
    plan: PricePlan | None = None
    if price is not None or tier or peak is not None:
        current = get_settings(context.engine, workspace_id=context.workspace.id).price_plan
        plan = _edited_plan(current, price=price, tiers=tier or [], peak=peak)
    change = update_settings(
        context.engine,
        workspace_id=context.workspace.id,
        signature=signature,
        opt_out_text=opt_out,
        price_plan=plan,
    )
    if json_output:
        print_json({"changed": list(change.changed), **settings_json(context, change.after)})
        return
    if not change.changed:
        console.print("设置未改变")
        return
    console.print("已修改：" + "、".join(_FIELD_LABELS[name] for name in change.changed))
    _print_settings(context, change.after)


def _edited_plan(
    current: PricePlan, *, price: str | None, tiers: list[str], peak: str | None
) -> PricePlan:
    plan = current
    if tiers:
        new_tiers, beyond = parse_tiers(tiers)
        if beyond is not None and price is not None:
            raise InvalidInput("阶梯末档单价和 --price 是同一个价格，请只写一处")
        plan = replace(plan, tiers=new_tiers)
        if beyond is not None:
            plan = replace(plan, price_per_part=beyond)
    if price is not None:
        plan = replace(plan, price_per_part=parse_price(price))
    if peak is not None:
        plan = replace(plan, peak=parse_peak(peak))
    return plan
