"""``echelon coupons …``: redeem a code at the till, generate codes, export a campaign's."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from echelon.analytics.exports import write_table
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json
from echelon.errors import InvalidInput
from echelon.tracking.coupons import campaign_coupons, generate_coupons, redeem_coupon

coupons_app = typer.Typer(no_args_is_help=True)


def _fen(amount: str) -> int:
    try:
        value = Decimal(amount.strip().lstrip("¥￥").replace(",", ""))
    except InvalidOperation as exc:
        raise InvalidInput(f"金额 {amount!r} 应为数字，例如 99 或 128.50") from exc
    if value != value.quantize(Decimal("0.01")):
        raise InvalidInput(f"金额 {amount!r} 最多两位小数")
    return int(value * 100)


@coupons_app.command("redeem")
@handle_errors
def redeem(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="券码（大小写、空格和横线不限）")],
    order: Annotated[str, typer.Option(help="订单号")],
    amount: Annotated[str, typer.Option(help="订单金额（元）")],
    json_output: JsonFlag = False,
) -> None:
    """核销优惠券：记为该订单使用，并把订单计入发券短信的转化（每个订单只计一次）。"""
    context: Context = ctx.obj
    redemption = redeem_coupon(
        context.engine,
        workspace_id=context.workspace.id,
        code=code,
        order_id=order,
        amount_fen=_fen(amount),
        now=datetime.now(UTC),
    )
    if json_output:
        print_json(asdict(redemption))
        return
    credited = "已计入活动转化" if redemption.credited else "未新增转化（无对应短信或订单已计入）"
    console.print(f"已核销 {redemption.code}（订单 {redemption.order_id}）：{credited}")


@coupons_app.command("generate")
@handle_errors
def generate(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="活动名称")],
    count: Annotated[int, typer.Option(help="生成张数", min=1, max=1_000_000)],
    export: Annotated[Path | None, typer.Option(help="券码导出到文件（.csv 或 .xlsx）")] = None,
    json_output: JsonFlag = False,
) -> None:
    """预先生成一批不重复的券码（不含 0/O/1/I），供门店或收银系统导入。"""
    context: Context = ctx.obj
    codes = generate_coupons(
        context.engine,
        workspace_id=context.workspace.id,
        campaign=campaign,
        count=count,
        now=datetime.now(UTC),
    )
    if export is not None:
        write_table(export, ["券码"], ([code] for code in codes), title="券码")
    if json_output:
        print_json({"campaign": campaign, "generated": len(codes), "codes": codes[:100]})
        return
    where = f"，已导出到 {export}" if export else f"，例如 {'、'.join(codes[:3])}"
    console.print(f"已为活动「{campaign}」生成 {len(codes)} 张券码{where}")


@coupons_app.command("export")
@handle_errors
def export(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="活动名称")],
    path: Annotated[Path, typer.Argument(help="导出文件（.csv 或 .xlsx）")],
    json_output: JsonFlag = False,
) -> None:
    """导出活动的全部券码：收券人、发放与核销情况。"""
    context: Context = ctx.obj
    rows = (
        [
            row["code"],
            row["phone"],
            context.local(row["issued_at"]),
            context.local(row["redeemed_at"]),
            row["order_id"],
            None if row["amount_fen"] is None else Decimal(row["amount_fen"]) / 100,
        ]
        for row in campaign_coupons(
            context.engine, workspace_id=context.workspace.id, campaign=campaign
        )
    )
    written = write_table(
        path,
        ["券码", "手机号", "发放时间", "核销时间", "订单号", "订单金额(元)"],
        rows,
        title="券码",
    )
    if json_output:
        print_json({"file": str(path), "rows": written})
    else:
        console.print(f"已导出 {written} 张券码到 {path}")
