"""``echelon templates …``: write, review and preview message templates."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from echelon.cli.content import (
    KindOption,
    count_json,
    hits_json,
    print_count,
    print_text_with_hits,
)
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, login_name, print_json
from echelon.content.preview import preview_template
from echelon.content.review import (
    TemplateChange,
    approve_template,
    edit_template,
    lint_template,
    reject_template,
    submit_template,
    template_history,
)
from echelon.content.templates import (
    KIND_LABELS,
    STATUS_LABELS,
    Template,
    create_template,
    get_template,
    list_templates,
)
from echelon.errors import InvalidInput

templates_app = typer.Typer(no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="模板名称")]
BodyOption = Annotated[str | None, typer.Option(help="模板正文，可用变量，如 {{ name }}")]
BodyFileOption = Annotated[
    Path | None, typer.Option(help="从文件读取正文（UTF-8），适合长文本；与 --body 二选一")
]
SignatureOption = Annotated[str | None, typer.Option(help="本模板专用签名（默认用工作区签名）")]
ByOption = Annotated[str | None, typer.Option("--by", help="操作人（默认：当前系统用户）")]

_FIELD_LABELS = {"body": "正文", "kind": "类型", "signature": "签名", "review_status": "状态"}
_ACTION_LABELS = {
    "created": "创建",
    "edited": "修改",
    "submitted": "提交审核",
    "approved": "审核通过",
    "rejected": "驳回",
}


def template_json(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "kind": template.kind,
        "body": template.body,
        "signature": template.signature,
        "review_status": template.review_status,
        "review_note": template.review_note,
        "submitted_at": template.submitted_at,
        "reviewed_at": template.reviewed_at,
        "reviewed_by": template.reviewed_by,
        "created_at": template.created_at,
        "updated_at": template.updated_at,
        "variables": sorted(template.variables),
    }


def _actor(by: str | None) -> str:
    return by if by is not None else login_name()


def _body(body: str | None, body_file: Path | None) -> str | None:
    if body is not None and body_file is not None:
        raise InvalidInput("--body 和 --body-file 只能用一个")
    if body_file is not None:
        return body_file.read_text(encoding="utf-8-sig")
    return body


def _report(change: TemplateChange, json_output: bool, done: str) -> None:
    template = change.template
    if json_output:
        print_json(
            {
                "template": template_json(template),
                "changed": list(change.changed),
                "status": {"from": change.status_before, "to": template.review_status},
            }
        )
        return
    if not change.changed:
        console.print(f"模板「{template.name}」没有改变")
        return
    fields = "、".join(_FIELD_LABELS[name] for name in change.changed if name != "review_status")
    status = f"状态 {STATUS_LABELS[change.status_before]}"
    if template.review_status != change.status_before:
        status += f" → {STATUS_LABELS[template.review_status]}"
    console.print(
        f"模板「{template.name}」{done}" + (f"：{fields}" if fields else "") + f"；{status}"
    )


@templates_app.command("create")
@handle_errors
def templates_create(
    ctx: typer.Context,
    name: NameArgument,
    kind: KindOption = "marketing",
    body: BodyOption = None,
    body_file: BodyFileOption = None,
    signature: SignatureOption = None,
    by: ByOption = None,
    json_output: JsonFlag = False,
) -> None:
    """新建模板（草稿）。"""
    context: Context = ctx.obj
    text = _body(body, body_file)
    if text is None:
        raise InvalidInput("请用 --body 或 --body-file 给出模板正文")
    template = create_template(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        kind=kind,
        body=text,
        signature=signature,
        actor=_actor(by),
        now=datetime.now(UTC),
    )
    if json_output:
        print_json({"template": template_json(template), "created": True})
        return
    console.print(
        f"已创建{KIND_LABELS[template.kind]}模板「{template.name}」（草稿）；"
        f"检查：echelon templates lint {template.name}，提交审核：echelon templates submit"
    )


@templates_app.command("edit")
@handle_errors
def templates_edit(
    ctx: typer.Context,
    name: NameArgument,
    body: BodyOption = None,
    body_file: BodyFileOption = None,
    kind: Annotated[
        str | None, typer.Option(help="改为 marketing、service 或 verification")
    ] = None,
    signature: SignatureOption = None,
    workspace_signature: Annotated[
        bool, typer.Option("--workspace-signature", help="改回使用工作区默认签名")
    ] = False,
    by: ByOption = None,
    json_output: JsonFlag = False,
) -> None:
    """修改模板；已通过的模板改后回到待审核，被驳回的回到草稿。"""
    context: Context = ctx.obj
    change = edit_template(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        body=_body(body, body_file),
        kind=kind,
        signature=signature,
        use_workspace_signature=workspace_signature,
        actor=_actor(by),
        now=datetime.now(UTC),
    )
    _report(change, json_output, "已修改")


@templates_app.command("submit")
@handle_errors
def templates_submit(
    ctx: typer.Context, name: NameArgument, by: ByOption = None, json_output: JsonFlag = False
) -> None:
    """提交审核（草稿 → 待审核）。"""
    context: Context = ctx.obj
    change = submit_template(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        actor=_actor(by),
        now=datetime.now(UTC),
    )
    _report(change, json_output, "已提交审核")


@templates_app.command("approve")
@handle_errors
def templates_approve(
    ctx: typer.Context,
    name: NameArgument,
    by: ByOption = None,
    note: Annotated[str | None, typer.Option(help="审核意见（可选）")] = None,
    json_output: JsonFlag = False,
) -> None:
    """审核通过（待审核 → 已通过）；含禁止词时不能通过。"""
    context: Context = ctx.obj
    change = approve_template(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        actor=_actor(by),
        note=note,
        now=datetime.now(UTC),
    )
    context.audit("template.approve", f"template:{name}", {"note": note}, actor=_actor(by))
    _report(change, json_output, "已审核通过")


@templates_app.command("reject")
@handle_errors
def templates_reject(
    ctx: typer.Context,
    name: NameArgument,
    reason: Annotated[str, typer.Option(help="驳回原因（必填，作者据此修改）")],
    by: ByOption = None,
    json_output: JsonFlag = False,
) -> None:
    """驳回（待审核 → 已驳回），须写明原因。"""
    context: Context = ctx.obj
    change = reject_template(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        actor=_actor(by),
        reason=reason,
        now=datetime.now(UTC),
    )
    context.audit("template.reject", f"template:{name}", {"reason": reason}, actor=_actor(by))
    _report(change, json_output, "已驳回")


@templates_app.command("show")
@handle_errors
def templates_show(ctx: typer.Context, name: NameArgument, json_output: JsonFlag = False) -> None:
    """查看模板和它的审核记录（谁在何时提交、通过或驳回了哪段文字）。"""
    context: Context = ctx.obj
    template = get_template(context.engine, workspace_id=context.workspace.id, name=name)
    history = template_history(context.engine, workspace_id=context.workspace.id, name=name)
    if json_output:
        print_json({**template_json(template), "history": [asdict(r) for r in history]})
        return
    console.print(
        f"[bold]{template.name}[/]  {KIND_LABELS[template.kind]}  "
        f"{STATUS_LABELS[template.review_status]}  签名 {template.signature or '（工作区默认）'}",
        highlight=False,
    )
    console.print(template.body, markup=False, highlight=False)
    if template.variables:
        console.print("变量 " + "、".join(sorted(template.variables)), highlight=False)
    if template.review_note:
        console.print(f"审核意见 {template.review_note}", markup=False)
    table = Table("时间", "操作", "操作人", "说明", title="审核记录")
    for record in history:
        table.add_row(
            f"{record.at:%Y-%m-%d %H:%M}",
            _ACTION_LABELS[record.action],
            record.actor,
            record.note or "",
        )
    console.print(table)


@templates_app.command("list")
@handle_errors
def templates_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="只看某一状态：draft、pending、approved、rejected")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """列出模板（最近修改的在前）。"""
    context: Context = ctx.obj
    found = list_templates(context.engine, workspace_id=context.workspace.id, status=status)
    if json_output:
        print_json([template_json(template) for template in found])
        return
    table = Table("名称", "类型", "状态", "正文", "更新时间")
    for template in found:
        body = template.body if len(template.body) <= 30 else template.body[:29] + "…"
        table.add_row(
            template.name,
            KIND_LABELS[template.kind],
            STATUS_LABELS[template.review_status],
            body,
            f"{template.updated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@templates_app.command("lint")
@handle_errors
def templates_lint(ctx: typer.Context, name: NameArgument, json_output: JsonFlag = False) -> None:
    """检查模板的敏感词（含工作区词库）；禁止词会阻止审核通过。"""
    context: Context = ctx.obj
    result = lint_template(context.engine, workspace_id=context.workspace.id, name=name)
    if json_output:
        print_json(
            {
                "template": name,
                "text": result.text,
                "hits": hits_json(result.hits),
                "sample_text": result.sample_text,
                "sample_hits": hits_json(result.sample_hits),
                "blocked": bool(result.blocking),
            }
        )
        return
    print_text_with_hits(result.text, result.hits)
    found = {hit.word for hit in result.hits}
    if result.sample_text is not None and {h.word for h in result.sample_hits} - found:
        console.print("变量为空时拼出的文字也有命中：")
        print_text_with_hits(result.sample_text, result.sample_hits)
    if result.blocking:
        console.print("[bold red]含禁止词，不能通过审核[/]")
    elif result.hits or result.sample_hits:
        console.print("[yellow]有提醒词，请确认语境[/]")
    else:
        console.print("未发现敏感词")


@templates_app.command("preview")
@handle_errors
def templates_preview(
    ctx: typer.Context,
    name: NameArgument,
    contact: Annotated[str, typer.Option(help="用哪个联系人预览（手机号）")],
    coupon: Annotated[str | None, typer.Option(help="优惠券（变量 coupon）")] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="其他发送变量：名称=值，可重复")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """用真实联系人渲染模板：最终文字、编码、条数、费用和敏感词。"""
    context: Context = ctx.obj
    send_context: dict[str, object] = {}
    for pair in var or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--var {pair!r} 应写作 名称=值，例如 --var points=200")
        send_context[key.strip()] = value
    if coupon is not None:
        send_context["coupon"] = coupon
    preview = preview_template(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        phone=contact,
        context=send_context,
        now=datetime.now(UTC),
    )
    if json_output:
        print_json(
            {
                "template": preview.template,
                "review_status": preview.review_status,
                "phone": preview.phone,
                "text": preview.text,
                **count_json(preview.count),
                "cost": preview.cost,
                "hits": hits_json(preview.hits),
                "links": preview.links,
            }
        )
        return
    print_text_with_hits(preview.text, preview.hits)
    print_count(preview.count)
    console.print(f"费用 ¥{preview.cost}（按当前时间和价格方案估算）", highlight=False)
    for url in preview.links:
        console.print(
            f"链接 {url} 发送时换成每位收件人自己的短链（预览中以等长占位，计费条数相同）",
            highlight=False,
        )
    if preview.review_status != "approved":
        console.print(f"[yellow]模板{STATUS_LABELS[preview.review_status]}，审核通过后才能发送[/]")
