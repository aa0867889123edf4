"""``echelon contacts …`` and ``echelon events …``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from echelon.audience.consent import PURPOSES
from echelon.audience.contacts import count_contacts, export_contacts, get_contact
from echelon.audience.importing import (
    ContactImportOptions,
    ImportReport,
    import_contacts,
    import_events,
)
from echelon.audience.phone import Carrier
from echelon.audience.suppression import KINDS
from echelon.cli.options import BatchOption, JsonFlag, MapOption, RejectsOption, parse_mapping
from echelon.cli.output import Context, console, handle_errors, print_json, progress_bar

contacts_app = typer.Typer(no_args_is_help=True)
events_app = typer.Typer(no_args_is_help=True)


def show_report(report: ImportReport, *, json_output: bool, what: str) -> None:
    if json_output:
        print_json(report.to_json())
        return
    data = report.to_json()
    console.print(
        f"{what}：读取 {data['rows']} 行，新增 {data['imported']}，更新 {data['updated']}，"
        f"未变 {data['unchanged']}，重复 {data['duplicates']}，拒绝 {data['rejected']}"
    )
    labels = {
        "consent_granted": "授予营销同意",
        "consent_withheld": "曾撤回同意、未恢复",
        "tags_added": "新增标签",
        "list_members_added": "加入名单",
        "contacts_created": "新建联系人（无营销同意）",
    }
    for key, label in labels.items():
        if data.get(key):
            console.print(f"  {label}：{data[key]}")
    if report.rejects_file:
        console.print(f"  被拒行及原因见 [bold]{report.rejects_file}[/]")


@contacts_app.command("import")
@handle_errors
def contacts_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV 或 XLSX 文件（UTF-8 或 GBK）")],
    consent_source: Annotated[
        str | None,
        typer.Option(help="营销同意的来源（如 checkout_checkbox）；不写则不授予营销同意"),
    ] = None,
    consent_proof: Annotated[str | None, typer.Option(help="同意凭证（如表单编号）")] = None,
    list_name: Annotated[str | None, typer.Option("--list", help="同时加入此名单")] = None,
    columns: MapOption = None,
    rejects: RejectsOption = None,
    batch_size: BatchOption = 20_000,
    json_output: JsonFlag = False,
) -> None:
    """导入联系人（按手机号去重，可重复导入）。"""
    context: Context = ctx.obj
    options = ContactImportOptions(
        columns=parse_mapping(columns),
        consent_source=consent_source,
        consent_proof=consent_proof,
        list_name=list_name,
        rejects_path=rejects,
        batch_size=batch_size,
    )
    with progress_bar("导入联系人", enabled=not json_output) as progress:
        report = import_contacts(
            context.engine,
            workspace=context.workspace,
            path=file,
            options=options,
            now=datetime.now(UTC),
            progress=progress,
        )
    show_report(report, json_output=json_output, what="导入完成")


@contacts_app.command("show")
@handle_errors
def contacts_show(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="手机号")],
    json_output: JsonFlag = False,
) -> None:
    """查看一个联系人：资料、标签、同意记录、屏蔽状态、最近事件。"""
    context: Context = ctx.obj
    profile = get_contact(context.engine, workspace_id=context.workspace.id, phone=phone)
    if json_output:
        print_json(asdict(profile))
        return
    carrier = Carrier(profile.carrier).label if profile.carrier else "未知"
    region = " ".join(p for p in (profile.province, profile.city) if p) or "未知"
    gender = {"male": "男", "female": "女"}.get(profile.gender or "", "未知")
    console.print(f"[bold]{profile.phone}[/] {profile.name or ''}  {carrier}  {region}")
    birthday = "未知"
    if profile.birthday:
        birthday = f"{profile.birthday}{'（农历）' if profile.birthday_lunar else ''}"
    console.print(f"性别 {gender}  生日 {birthday}")
    console.print(f"标签 {'、'.join(profile.tags) or '无'}")
    if profile.attributes:
        console.print("属性 " + "，".join(f"{k}={v}" for k, v in profile.attributes.items()))
    blocked = "、".join(KINDS[k] for k in profile.suppressions)
    console.print(f"屏蔽 {blocked or '无'}")
    table = Table("用途", "授予时间", "来源", "凭证", "撤回时间", title="同意记录")
    for record in profile.consents:
        table.add_row(
            PURPOSES.get(record.purpose, record.purpose),
            context.local(record.granted_at),
            record.source,
            record.proof or "",
            context.local(record.revoked_at),
        )
    console.print(table)
    if profile.recent_events:
        events = Table("事件", "时间", "金额", "订单", "品类", title="最近事件")
        for event in profile.recent_events:
            amount = f"¥{event.amount_fen / 100:.2f}" if event.amount_fen is not None else ""
            events.add_row(
                event.type,
                context.local(event.occurred_at),
                amount,
                event.order_id or "",
                event.category or "",
            )
        console.print(events)


@contacts_app.command("count")
@handle_errors
def contacts_count(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """联系人总数、有营销同意、被屏蔽、可营销触达，以及按运营商分布。"""
    context: Context = ctx.obj
    counts = count_contacts(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json(counts)
        return
    console.print(
        f"联系人 {counts['total']}，有营销同意 {counts['marketing_consent']}，"
        f"被屏蔽 {counts['suppressed']}，可营销触达 {counts['marketing_reachable']}"
    )
    for carrier, n in sorted(counts["by_carrier"].items(), key=lambda kv: -kv[1]):
        label = Carrier(carrier).label if carrier != "unknown" else "未知"
        console.print(f"  {label}：{n}")


@contacts_app.command("export")
@handle_errors
def contacts_export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="写入的 CSV 文件")],
    json_output: JsonFlag = False,
) -> None:
    """导出全部联系人为 CSV（可再次导入）。"""
    context: Context = ctx.obj
    with progress_bar("导出联系人", enabled=not json_output) as progress:
        written = export_contacts(
            context.engine, workspace_id=context.workspace.id, path=file, progress=progress
        )
    context.audit("export", "contacts", {"rows": written, "format": "csv", "file": str(file)})
    if json_output:
        print_json({"exported": written, "file": str(file)})
    else:
        console.print(f"已导出 {written} 个联系人到 {file}")


@events_app.command("import")
@handle_errors
def events_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV 或 XLSX 文件：手机号、事件类型、时间……")],
    columns: MapOption = None,
    rejects: RejectsOption = None,
    batch_size: BatchOption = 20_000,
    json_output: JsonFlag = False,
) -> None:
    """导入行为事件（按事件 ID 或内容去重，可重复导入）。"""
    context: Context = ctx.obj
    with progress_bar("导入事件", enabled=not json_output) as progress:
        report = import_events(
            context.engine,
            workspace=context.workspace,
            path=file,
            columns=parse_mapping(columns),
            rejects_path=rejects,
            now=datetime.now(UTC),
            batch_size=batch_size,
            progress=progress,
        )
    show_report(report, json_output=json_output, what="事件导入完成")
