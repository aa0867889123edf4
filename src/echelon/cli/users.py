"""``echelon users add|list``: console users of the workspace and their roles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from echelon.access.models import Role
from echelon.access.service import create_user, list_users
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json

users_app = typer.Typer(no_args_is_help=True)

_ROLES_HELP = "角色：" + "、".join(f"{r.value}（{r.label}）" for r in Role)


@users_app.command("add")
@handle_errors
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="登录邮箱")],
    role: Annotated[str, typer.Option(help=_ROLES_HELP)],
    name: Annotated[str | None, typer.Option(help="姓名（默认取邮箱 @ 前的部分）")] = None,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="ECHELON_NEW_PASSWORD",
            help="密码，至少 10 个字符（不填则提示输入；也可用 ECHELON_NEW_PASSWORD）",
        ),
    ] = "",
    json_output: JsonFlag = False,
) -> None:
    """新建控制台用户。"""
    context: Context = ctx.obj
    created = create_user(
        context.engine,
        workspace_id=context.workspace.id,
        email=email,
        name=name or email.split("@")[0],
        role=role,
        password=password,
        now=datetime.now(UTC),
    )
    context.audit("user.create", f"user:{created.email}", {"role": role})
    if json_output:
        print_json(
            {
                "id": created.id,
                "email": created.email,
                "name": created.name,
                "role": created.role.value,
            }
        )
        return
    console.print(f"已创建用户 {created.email}（{created.role.label}）")


@users_app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """工作区的全部用户。"""
    context: Context = ctx.obj
    found = list_users(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json(
            [
                {
                    "id": u.id,
                    "email": u.email,
                    "name": u.name,
                    "role": u.role.value,
                    "created_at": u.created_at,
                    "disabled": u.disabled_at is not None,
                }
                for u in found
            ]
        )
        return
    table = Table("邮箱", "姓名", "角色", "创建时间")
    for u in found:
        table.add_row(u.email, u.name, u.role.label, context.local(u.created_at))
    console.print(table)
