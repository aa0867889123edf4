"""``echelon segments …``: create (from JSON or a preset), edit, show, list, presets,
count, members, export."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from echelon.audience.phone import Carrier
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json, progress_bar
from echelon.errors import InvalidInput
from echelon.segments.presets import PRESETS
from echelon.segments.service import (
    Segment,
    count_segment,
    create_from_preset,
    create_segment,
    edit_segment,
    export_members,
    get_segment,
    list_members,
    list_segments,
)

segments_app = typer.Typer(no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="分群名称（或编号）")]
DefinitionOption = Annotated[
    str | None,
    typer.Option("--definition", "-d", help="分群定义 JSON；写作 @文件名 则从文件读取"),
]
AtOption = Annotated[
    str | None,
    typer.Option("--at", help="按此时刻计算（默认现在），如 2026-11-11T20:00+08:00"),
]


def _definition(text: str | None) -> object | None:
    if text is None:
        return None
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8-sig")
    try:
        document: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"分群定义不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列，{exc.msg}"
        ) from exc
    return document


def _moment(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"时刻 {text!r} 应写作 2026-11-11T20:00+08:00") from exc
    if moment.tzinfo is None:
        raise InvalidInput(f"时刻 {text!r} 须带时区，例如 2026-11-11T20:00+08:00")
    return moment.astimezone(UTC)


def _params(pairs: list[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {pair!r} 应写作 名称=值，例如 threshold=5000")
        found[key.strip()] = value.strip()
    return found


def _segment_json(segment: Segment) -> dict[str, Any]:
    return asdict(segment)


def _show(segment: Segment, verb: str) -> None:
    console.print(f"{verb}分群「{segment.name}」（#{segment.id}）")
    if segment.description:
        console.print(f"  {segment.description}")
    console.print_json(json.dumps(segment.definition, ensure_ascii=False))


@segments_app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="分群名称（用预设时默认取预设名）")] = None,
    definition: DefinitionOption = None,
    preset: Annotated[str | None, typer.Option(help="从预设复制：" + "、".join(PRESETS))] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="预设参数 名称=值，如 threshold=5000；可重复")
    ] = None,
    description: Annotated[str | None, typer.Option(help="分群说明")] = None,
    json_output: JsonFlag = False,
) -> None:
    """新建分群：给出定义 JSON，或从内置预设复制一份（之后可自行修改）。"""
    context: Context = ctx.obj
    now = datetime.now(UTC)
    if (definition is None) == (preset is None):
        raise InvalidInput("请用 --definition 给出分群定义，或用 --preset 选择预设（二选一）")
    if preset is not None:
        created = create_from_preset(
            context.engine,
            workspace_id=context.workspace.id,
            preset=preset,
            name=name,
            params=_params(param),
            now=now,
        )
    else:
        if not name:
            raise InvalidInput("请给出分群名称")
        created = create_segment(
            context.engine,
            workspace_id=context.workspace.id,
            name=name,
            definition=_definition(definition),
            description=description,
            now=now,
        )
    if json_output:
        print_json(_segment_json(created))
    else:
        _show(created, "已创建")


@segments_app.command("edit")
@handle_errors
def edit(
    ctx: typer.Context,
    name: Name,
    definition: DefinitionOption = None,
    rename: Annotated[str | None, typer.Option(help="新名称")] = None,
    description: Annotated[str | None, typer.Option(help="新的说明")] = None,
    json_output: JsonFlag = False,
) -> None:
    """修改分群的定义、名称或说明。"""
    context: Context = ctx.obj
    edited = edit_segment(
        context.engine,
        workspace_id=context.workspace.id,
        segment=name,
        definition=_definition(definition),
        name=rename,
        description=description,
        now=datetime.now(UTC),
    )
    if json_output:
        print_json(_segment_json(edited))
    else:
        _show(edited, "已修改")


@segments_app.command("show")
@handle_errors
def show(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """查看分群的定义。"""
    context: Context = ctx.obj
    segment = get_segment(context.engine, workspace_id=context.workspace.id, segment=name)
    if json_output:
        print_json(_segment_json(segment))
    else:
        _show(segment, "")
        console.print(f"  更新于 {context.local(segment.updated_at)}")


@segments_app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """列出全部分群。"""
    context: Context = ctx.obj
    segments = list_segments(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json([_segment_json(s) for s in segments])
        return
    table = Table("编号", "名称", "来自预设", "说明", "更新于")
    for s in segments:
        preset = PRESETS[s.preset].name if s.preset in PRESETS else ""
        table.add_row(str(s.id), s.name, preset, s.description or "", context.local(s.updated_at))
    console.print(table)


@segments_app.command("presets")
@handle_errors
def presets(json_output: JsonFlag = False) -> None:
    """内置预设：可用 `segments create --preset 键` 复制后修改。"""
    if json_output:
        print_json(
            [
                {
                    "key": p.key,
                    "name": p.name,
                    "description": p.description,
                    "params": {
                        k: {"default": v.default, "label": v.label} for k, v in p.params.items()
                    },
                }
                for p in PRESETS.values()
            ]
        )
        return
    table = Table("键", "名称", "说明", "参数（默认值）")
    for p in PRESETS.values():
        params = "，".join(f"{k}={v.default}（{v.label}）" for k, v in p.params.items())
        table.add_row(p.key, p.name, p.description, params)
    console.print(table)


@segments_app.command("count")
@handle_errors
def count(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="分群名称或编号")] = None,
    definition: DefinitionOption = None,
    at: AtOption = None,
    json_output: JsonFlag = False,
) -> None:
    """分群的实时人数，及按运营商、省份的分布（也可直接给出定义试算）。"""
    context: Context = ctx.obj
    counted = count_segment(
        context.engine,
        workspace_id=context.workspace.id,
        segment=name,
        definition=_definition(definition),
        now=_moment(at),
    )
    if json_output:
        print_json(asdict(counted))
        return
    console.print(f"分群人数 {counted.total}")
    carriers = "，".join(
        f"{Carrier(k).label if k != 'unknown' else '未知'} {n}"
        for k, n in counted.by_carrier.items()
    )
    console.print(f"  运营商：{carriers or '无'}")
    provinces = "，".join(
        f"{k if k != 'unknown' else '未知'} {n}" for k, n in counted.by_province.items()
    )
    console.print(f"  省份：{provinces or '无'}")


@segments_app.command("members")
@handle_errors
def members(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option(help="最多显示人数", min=1, max=10_000)] = 20,
    after: Annotated[int, typer.Option(help="从此联系人编号之后开始（翻页）", min=0)] = 0,
    at: AtOption = None,
    json_output: JsonFlag = False,
) -> None:
    """分群成员（按联系人编号翻页）。"""
    context: Context = ctx.obj
    found = list_members(
        context.engine,
        workspace_id=context.workspace.id,
        segment=name,
        now=_moment(at),
        after_id=after,
        limit=limit,
    )
    if json_output:
        print_json([asdict(m) for m in found])
        return
    table = Table("编号", "手机号", "姓名", "省份", "城市", "运营商")
    for m in found:
        carrier = Carrier(m.carrier).label if m.carrier else ""
        table.add_row(str(m.id), m.phone, m.name or "", m.province or "", m.city or "", carrier)
    console.print(table)
    if len(found) == limit:
        console.print(f"下一页：--after {found[-1].id}")


@segments_app.command("export")
@handle_errors
def export(
    ctx: typer.Context,
    name: Name,
    file: Annotated[Path, typer.Argument(help="写入的 CSV 文件")],
    at: AtOption = None,
    json_output: JsonFlag = False,
) -> None:
    """导出分群成员为 CSV。"""
    context: Context = ctx.obj
    with progress_bar("导出分群成员", enabled=not json_output) as progress:
        written = export_members(
            context.engine,
            workspace_id=context.workspace.id,
            segment=name,
            path=file,
            now=_moment(at),
            progress=progress,
        )
    context.audit(
        "export", f"segment:{name}", {"rows": written, "format": "csv", "file": str(file)}
    )
    if json_output:
        print_json({"exported": written, "file": str(file)})
    else:
        console.print(f"已导出 {written} 位成员到 {file}")
