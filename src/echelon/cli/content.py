"""``echelon content check`` (the counter kept open while writing) and ``echelon words …``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, errors, handle_errors, print_json
from echelon.content.length import PartCount
from echelon.content.preview import TextCheck, check_text, check_workspace_text
from echelon.content.templates import SignatureNotSet, check_kind
from echelon.content.words import Hit, Severity
from echelon.content.workspace_words import (
    SEVERITY_LABELS,
    WorkspaceWord,
    add_word,
    list_words,
    parse_category,
    parse_severity,
    remove_word,
)
from echelon.workspaces.service import Workspace, WorkspaceNotFound

content_app = typer.Typer(no_args_is_help=True)
words_app = typer.Typer(no_args_is_help=True)

KindOption = Annotated[
    str, typer.Option(help="短信类型：marketing（营销）、service（通知）、verification（验证码）")
]
_STYLES = {Severity.WARN: "bold yellow", Severity.BLOCK: "bold red"}


def hits_json(hits: Iterable[Hit]) -> list[dict[str, Any]]:
    return [
        {
            "word": hit.word,
            "category": hit.category.value,
            "severity": hit.severity.value,
            "suggestion": hit.suggestion,
            "start": hit.start,
            "end": hit.end,
        }
        for hit in hits
    ]


def count_json(count: PartCount) -> dict[str, Any]:
    return {
        "encoding": count.encoding,
        "characters": count.characters,
        "parts": count.parts,
        "remaining": count.remaining,
    }


def print_text_with_hits(text: str, hits: list[Hit]) -> None:
    """The text with hits coloured (red: must change, yellow: check), then each hit."""
    shown = Text(text)
    # Warnings first, so a block hit overlapping one keeps its red.
    for severity in (Severity.WARN, Severity.BLOCK):
        for hit in hits:
            if hit.severity is severity:
                shown.stylize(_STYLES[severity], hit.start, hit.end)
    console.print(shown)
    for hit in hits:
        line = Text("  ")
        line.append(hit.word, _STYLES[hit.severity])
        line.append(f"  {hit.category.label} · {SEVERITY_LABELS[hit.severity]}")
        if hit.suggestion:
            line.append(f"  → 建议改为「{hit.suggestion}」")
        console.print(line)


def print_count(count: PartCount) -> None:
    console.print(
        f"{count.encoding} · {count.characters} 字 · {count.parts} 条"
        f" · 本条还可写 {count.remaining} 字",
        highlight=False,
    )


@content_app.command("check")
@handle_errors
def content_check(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="短信正文（不含签名和退订语）")],
    kind: KindOption = "marketing",
    signature: Annotated[
        str | None, typer.Option(help="签名（默认用工作区签名；无数据库时必填）")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """合成并检查一条短信：签名、退订语、编码、字数、条数和敏感词。"""
    context: Context = ctx.obj
    checked_kind = check_kind(kind)
    workspace = _workspace_if_any(context)
    result: TextCheck
    if workspace is not None:
        result = check_workspace_text(
            context.engine,
            workspace_id=workspace.id,
            body=text,
            kind=checked_kind,
            signature=signature,
        )
    elif signature is None:
        raise SignatureNotSet()
    else:
        # On stderr, so that --json output stays one document.
        errors.print("提示：未使用工作区设置，只按系统词库和默认退订语检查", highlight=False)
        result = check_text(text, kind=checked_kind, signature=signature)
    if json_output:
        print_json(
            {"text": result.text, **count_json(result.count), "hits": hits_json(result.hits)}
        )
        return
    print_text_with_hits(result.text, result.hits)
    print_count(result.count)
    if not result.hits:
        console.print("未发现敏感词")


def _workspace_if_any(context: Context) -> Workspace | None:
    """The workspace when its database exists; None lets the check run without one
    (never creating an empty SQLite file as a side effect)."""
    url = make_url(context.settings.database_url)
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if url.get_backend_name() == "sqlite" and not in_memory and not Path(database).exists():
        return None
    try:
        return context.workspace
    except (WorkspaceNotFound, OperationalError):
        return None


@words_app.command("add")
@handle_errors
def words_add(
    ctx: typer.Context,
    word: Annotated[str, typer.Argument(help="词语（空格、符号、全半角、大小写不影响匹配）")],
    category: Annotated[str, typer.Option(help="分类，如 custom、absolute、finance")] = "custom",
    severity: Annotated[str, typer.Option(help="block（禁止，不能通过审核）或 warn（提醒）")] = (
        "block"
    ),
    suggestion: Annotated[str | None, typer.Option(help="建议的改写")] = None,
    json_output: JsonFlag = False,
) -> None:
    """把词语加入本工作区词库（同一词语再次添加即更新）。"""
    context: Context = ctx.obj
    entry, action = add_word(
        context.engine,
        workspace_id=context.workspace.id,
        word=word,
        category=parse_category(category),
        severity=parse_severity(severity),
        suggestion=suggestion,
        now=datetime.now(UTC),
    )
    if json_output:
        print_json({**_word_json(entry), "action": action})
        return
    said = {"added": "已加入", "updated": "已更新", "unchanged": "已在词库中，未改变"}[action]
    console.print(
        f"{said}「{entry.word}」（{entry.category.label} · {SEVERITY_LABELS[entry.severity]}）"
    )


@words_app.command("remove")
@handle_errors
def words_remove(
    ctx: typer.Context,
    word: Annotated[str, typer.Argument(help="词语")],
    json_output: JsonFlag = False,
) -> None:
    """从本工作区词库删除词语（系统词库不受影响）。"""
    context: Context = ctx.obj
    removed = remove_word(context.engine, workspace_id=context.workspace.id, word=word)
    if json_output:
        print_json({**_word_json(removed), "removed": True})
    else:
        console.print(f"已删除「{removed.word}」")


@words_app.command("list")
@handle_errors
def words_list(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """列出本工作区自己添加的词语（系统词库另计）。"""
    context: Context = ctx.obj
    entries = list_words(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json([_word_json(entry) for entry in entries])
        return
    if not entries:
        console.print("本工作区还没有自定义词语；用 echelon words add 添加")
        return
    table = Table("词语", "分类", "级别", "建议改写", "添加时间")
    for entry in entries:
        table.add_row(
            entry.word,
            entry.category.label,
            SEVERITY_LABELS[entry.severity],
            entry.suggestion or "",
            f"{entry.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


def _word_json(entry: WorkspaceWord) -> dict[str, Any]:
    return {
        "word": entry.word,
        "category": entry.category.value,
        "severity": entry.severity.value,
        "suggestion": entry.suggestion,
        "created_at": entry.created_at,
    }
