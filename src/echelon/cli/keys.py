"""``echelon keys create|list|revoke``: the workspace's API keys. A key's secret is
printed once, when it is created; echelon keeps only its digest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from echelon.access.models import KEY_SCOPES, ApiKey
from echelon.access.service import create_key, list_keys, revoke_key
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json

keys_app = typer.Typer(no_args_is_help=True)
CLI_ACTOR = "cli"


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "rate_per_minute": key.rate_per_minute,
        "created_by": key.created_by,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@keys_app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="密钥名称，如 shop-orders")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="权限范围，可重复：" + "、".join(sorted(KEY_SCOPES))),
    ],
    rate: Annotated[
        int | None, typer.Option(help="每分钟请求上限（默认取服务器设置）", min=1)
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """新建 API 密钥（密钥只显示这一次，请妥善保存）。"""
    context: Context = ctx.obj
    created = create_key(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        scopes=scope,
        rate_per_minute=rate,
        created_by=CLI_ACTOR,
        holder=None,
        now=datetime.now(UTC),
    )
    if json_output:
        print_json(_key_json(created.key) | {"secret": created.secret})
        return
    console.print(f"已创建密钥「{created.key.name}」（{'、'.join(created.key.scopes)}）：")
    console.print(created.secret, highlight=False, soft_wrap=True)
    console.print("[yellow]密钥只显示这一次；echelon 只保存它的摘要。[/]")


@keys_app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """全部密钥（不含密钥本身），最新在前。"""
    context: Context = ctx.obj
    found = list_keys(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json([_key_json(k) for k in found])
        return
    table = Table("ID", "名称", "前缀", "权限范围", "每分钟上限", "创建", "状态")
    for k in found:
        table.add_row(
            str(k.id),
            k.name,
            k.prefix,
            "、".join(k.scopes),
            str(k.rate_per_minute or "默认"),
            context.local(k.created_at),
            "已撤销" if k.revoked_at else "有效",
        )
    console.print(table)


@keys_app.command("revoke")
@handle_errors
def revoke(
    ctx: typer.Context,
    key_id: Annotated[int, typer.Argument(help="密钥 ID（见 keys list）")],
    json_output: JsonFlag = False,
) -> None:
    """撤销密钥：立即失效。"""
    context: Context = ctx.obj
    revoked = revoke_key(
        context.engine,
        workspace_id=context.workspace.id,
        key_id=key_id,
        actor=CLI_ACTOR,
        now=datetime.now(UTC),
    )
    if json_output:
        print_json(_key_json(revoked))
        return
    console.print(f"已撤销密钥「{revoked.name}」（{revoked.prefix}…）")
