"""``echelon consent …`` and ``echelon suppress …``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from echelon.audience.consent import grant_consent, revoke_consent
from echelon.audience.importing import import_suppressions
from echelon.audience.suppression import (
    KINDS,
    add_suppression,
    list_suppressions,
    remove_suppression,
)
from echelon.cli.contacts import show_report
from echelon.cli.options import BatchOption, JsonFlag, MapOption, RejectsOption, parse_mapping
from echelon.cli.output import Context, console, handle_errors, print_json, progress_bar

consent_app = typer.Typer(no_args_is_help=True)
suppress_app = typer.Typer(no_args_is_help=True)

Purpose = Annotated[str, typer.Option(help="用途：marketing（营销）或 service（通知）")]
Kind = Annotated[str, typer.Option(help="类型：" + "，".join(f"{k} {v}" for k, v in KINDS.items()))]


def _changed(json_output: bool, document: dict[str, object], message: str) -> None:
    if json_output:
        print_json(document)
    else:
        console.print(message)


@consent_app.command("grant")
@handle_errors
def consent_grant(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="手机号")],
    source: Annotated[str, typer.Option(help="同意来源，如 checkout_checkbox、web_form、store")],
    purpose: Purpose = "marketing",
    proof: Annotated[str | None, typer.Option(help="凭证，如表单编号、录音编号")] = None,
    json_output: JsonFlag = False,
) -> None:
    """记录一次同意（联系人不存在则创建）。"""
    context: Context = ctx.obj
    granted = grant_consent(
        context.engine,
        workspace_id=context.workspace.id,
        phone=phone,
        purpose=purpose,
        source=source,
        proof=proof,
        now=datetime.now(UTC),
    )
    if granted:
        context.audit(
            "consent.grant",
            f"phone:{phone}",
            {"purpose": purpose, "source": source, "proof": proof},
        )
    _changed(
        json_output,
        {"phone": phone, "purpose": purpose, "granted": granted},
        "已记录同意" if granted else "已有有效同意，未改变",
    )


@consent_app.command("revoke")
@handle_errors
def consent_revoke(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="手机号")],
    purpose: Purpose = "marketing",
    source: Annotated[str, typer.Option(help="撤回来源，如 customer_request")] = "cli",
    json_output: JsonFlag = False,
) -> None:
    """立即撤回同意。"""
    context: Context = ctx.obj
    revoked = revoke_consent(
        context.engine,
        workspace_id=context.workspace.id,
        phone=phone,
        purpose=purpose,
        source=source,
        now=datetime.now(UTC),
    )
    if revoked:
        context.audit("consent.revoke", f"phone:{phone}", {"purpose": purpose, "source": source})
    _changed(
        json_output,
        {"phone": phone, "purpose": purpose, "revoked": revoked},
        "已撤回同意" if revoked else "没有有效同意，未改变",
    )


@suppress_app.command("add")
@handle_errors
def suppress_add(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="手机号")],
    kind: Kind = "opt_out",
    reason: Annotated[str | None, typer.Option(help="原因")] = None,
    source: Annotated[str, typer.Option(help="来源")] = "cli",
    json_output: JsonFlag = False,
) -> None:
    """把号码加入屏蔽名单。"""
    context: Context = ctx.obj
    added = add_suppression(
        context.engine,
        workspace_id=context.workspace.id,
        phone=phone,
        kind=kind,
        source=source,
        reason=reason,
        now=datetime.now(UTC),
    )
    if added:
        context.audit("suppression.add", f"phone:{phone}", {"kind": kind, "reason": reason})
    _changed(
        json_output,
        {"phone": phone, "kind": kind, "added": added},
        f"已加入{KINDS[kind]}" if added else f"已在{KINDS[kind]}中，未改变",
    )


@suppress_app.command("remove")
@handle_errors
def suppress_remove(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="手机号")],
    kind: Kind = "opt_out",
    json_output: JsonFlag = False,
) -> None:
    """把号码移出屏蔽名单。"""
    context: Context = ctx.obj
    remove_suppression(context.engine, workspace_id=context.workspace.id, phone=phone, kind=kind)
    context.audit("suppression.remove", f"phone:{phone}", {"kind": kind})
    _changed(json_output, {"phone": phone, "kind": kind, "removed": True}, f"已移出{KINDS[kind]}")


@suppress_app.command("import")
@handle_errors
def suppress_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV 或 XLSX 文件，含手机号列（可选原因列）")],
    kind: Kind = "dnc",
    source: Annotated[str, typer.Option(help="来源，如名单提供方")] = "import",
    columns: MapOption = None,
    rejects: RejectsOption = None,
    batch_size: BatchOption = 20_000,
    json_output: JsonFlag = False,
) -> None:
    """批量导入屏蔽号码。"""
    context: Context = ctx.obj
    with progress_bar("导入屏蔽名单", enabled=not json_output) as progress:
        report = import_suppressions(
            context.engine,
            workspace=context.workspace,
            path=file,
            kind=kind,
            source=source,
            columns=parse_mapping(columns),
            rejects_path=rejects,
            now=datetime.now(UTC),
            batch_size=batch_size,
            progress=progress,
        )
    show_report(report, json_output=json_output, what=f"{KINDS[kind]}导入完成")


@suppress_app.command("list")
@handle_errors
def suppress_list(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="只看某一类型")] = None,
    limit: Annotated[int, typer.Option(help="最多显示条数", min=1)] = 100,
    json_output: JsonFlag = False,
) -> None:
    """列出屏蔽名单（最新在前）。"""
    context: Context = ctx.obj
    rows = list_suppressions(
        context.engine, workspace_id=context.workspace.id, kind=kind, limit=limit
    )
    if json_output:
        print_json(
            [
                {
                    "phone": r.phone,
                    "kind": r.kind,
                    "reason": r.reason,
                    "source": r.source,
                    "created_at": r.created_at,
                }
                for r in rows
            ]
        )
        return
    table = Table("号码", "类型", "原因", "来源", "加入时间")
    for r in rows:
        table.add_row(r.phone, KINDS[r.kind], r.reason or "", r.source, context.local(r.created_at))
    console.print(table)
