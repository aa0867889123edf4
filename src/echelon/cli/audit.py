"""``echelon audit``: who did what and when — sends, approvals, consent and suppression
changes, keys, users, exports — from the API, the console and the CLI alike."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from echelon.access.service import list_audit
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json


@handle_errors
def audit(
    ctx: typer.Context,
    action: Annotated[
        str | None, typer.Option(help="只看这一类，如 consent.revoke、template.approve、export")
    ] = None,
    limit: Annotated[int, typer.Option(help="条数（最新在前）", min=1, max=1000)] = 50,
    before: Annotated[int | None, typer.Option(help="翻页：只看编号小于此的")] = None,
    json_output: JsonFlag = False,
) -> None:
    """审计日志：谁在何时做了什么（最新在前）。"""
    context: Context = ctx.obj
    entries = list_audit(
        context.engine,
        workspace_id=context.workspace.id,
        action=action,
        before_id=before,
        limit=limit,
    )
    if json_output:
        print_json(
            [
                {"id": e.id, "at": e.at, "actor": e.actor, "action": e.action,
                 "target": e.target, "detail": e.detail}
                for e in entries
            ]
        )  # fmt: skip
        return
    table = Table(title="审计日志")
    for column in ("编号", "时间", "操作人", "操作", "对象"):
        table.add_column(column)
    for e in entries:
        table.add_row(str(e.id), context.local(e.at), e.actor, e.action, e.target or "")
    console.print(table)
