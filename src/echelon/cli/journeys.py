"""``echelon journeys …``: create (from JSON or a built-in), edit, show, list, activate,
pause, enrol, stats, builtins, and run (the runner as a process)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json
from echelon.compliance.rules import BlockReason
from echelon.errors import InvalidInput
from echelon.journeys.batch import PassSummary
from echelon.journeys.builtins import BUILTINS, get_builtin
from echelon.journeys.runner import JourneyRunner, RunnerOptions, run_journeys
from echelon.journeys.service import (
    EXIT_LABELS,
    STATUS_LABELS,
    activate_journey,
    create_from_builtin,
    create_journey,
    edit_journey,
    enrol_contact,
    journey_stats,
    list_journeys,
    pause_journey,
    show_journey,
)

journeys_app = typer.Typer(no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="旅程名称")]
FileOption = Annotated[
    Path | None, typer.Option("--file", help="旅程定义 JSON 文件（- 表示标准输入）")
]


def _now() -> datetime:
    return datetime.now(UTC)


def _read_definition(path: Path) -> Any:
    try:
        raw = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"无法读取 {path}：{exc.strerror}") from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path} 不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列，{exc.msg}"
        ) from exc


@journeys_app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="旅程名称（用内置旅程时默认取其名称）")] = None,
    file: FileOption = None,
    builtin: Annotated[
        str | None, typer.Option(help="复制一个内置旅程（见 journeys builtins）")
    ] = None,
    description: Annotated[str | None, typer.Option(help="说明")] = None,
    by: Annotated[str, typer.Option("--by", help="操作人（内置模板的创建人）")] = "运营",
    json_output: JsonFlag = False,
) -> None:
    """新建旅程（草稿）：从 JSON 定义，或复制内置旅程（同时创建其模板并提交审核）。"""
    context: Context = ctx.obj
    if (file is None) == (builtin is None):
        raise InvalidInput("请用 --file 给出旅程定义，或用 --builtin 复制内置旅程（二选一）")
    templates: dict[str, str] = {}
    if builtin is not None:
        journey, templates = create_from_builtin(
            context.engine,
            workspace_id=context.workspace.id,
            key=builtin,
            name=name,
            actor=by,
            now=_now(),
        )
    else:
        assert file is not None
        if name is None:
            raise InvalidInput("请给出旅程名称")
        journey = create_journey(
            context.engine,
            workspace_id=context.workspace.id,
            name=name,
            definition=_read_definition(file),
            description=description,
            now=_now(),
        )
    if json_output:
        print_json({"name": journey.name, "status": journey.status, "templates": templates})
        return
    console.print(f"已创建旅程「{journey.name}」（草稿，第 {journey.version} 版）")
    labels = {
        "pending": "已提交审核",
        "draft": "草稿（请先设置签名后提交审核）",
        "exists": "已存在，沿用",
    }
    for template, state in templates.items():
        console.print(f"  模板「{template}」：{labels[state]}")
    if templates:
        console.print("模板审核通过后，用 journeys activate 启用旅程。")


@journeys_app.command("edit")
@handle_errors
def edit(
    ctx: typer.Context, name: Name, file: FileOption = None, json_output: JsonFlag = False
) -> None:
    """修改旅程：保存为新版本。新进入的联系人走新版本，已在旅程中的走完原版本。"""
    context: Context = ctx.obj
    if file is None:
        raise InvalidInput("请用 --file 给出新的旅程定义")
    journey = edit_journey(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        definition=_read_definition(file),
        now=_now(),
    )
    if json_output:
        print_json({"name": journey.name, "version": journey.version, "status": journey.status})
    else:
        console.print(f"旅程「{journey.name}」已保存为第 {journey.version} 版")


@journeys_app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    name: Name,
    version: Annotated[int | None, typer.Option(help="查看第几版（默认最新）", min=1)] = None,
    json_output: JsonFlag = False,
) -> None:
    """旅程的定义、版本、在旅程中的人数与模板审核状态。"""
    context: Context = ctx.obj
    shown = show_journey(
        context.engine, workspace_id=context.workspace.id, name=name, version=version, now=_now()
    )
    if json_output:
        print_json(shown)
        return
    journey = shown["journey"]
    console.print(
        f"旅程「{journey['name']}」{STATUS_LABELS[journey['status']]}，"
        f"第 {shown['version']} 版（共 {len(shown['versions'])} 版）"
    )
    if journey["description"]:
        console.print(f"  {journey['description']}")
    counts = shown["enrolments"]
    console.print(
        f"  在旅程中 {counts.get('active', 0)}，已完成 {counts.get('completed', 0)}，"
        f"已退出 {counts.get('exited', 0)}"
    )
    for template, state in shown["templates"].items():
        console.print(f"  模板「{template}」：{'已审核通过' if state == 'approved' else state}")
    if "next_trigger" in shown:
        console.print(f"  下次触发：{shown['next_trigger'] or '该年节假日安排尚未公布'}")
    console.print_json(json.dumps(shown["definition"], ensure_ascii=False))


@journeys_app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """全部旅程（最新在前）。"""
    context: Context = ctx.obj
    found = list_journeys(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json(
            [
                {
                    "name": j.name,
                    "status": j.status,
                    "version": j.version,
                    "builtin": j.builtin,
                    "created_at": j.created_at,
                }
                for j in found
            ]
        )
        return
    table = Table("旅程", "状态", "版本", "来自内置", "创建时间")
    for j in found:
        table.add_row(
            j.name,
            STATUS_LABELS[j.status],
            str(j.version),
            j.builtin or "",
            context.local(j.created_at),
        )
    console.print(table)


@journeys_app.command("activate")
@handle_errors
def activate(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """启用（或恢复）旅程：此后发生的触发让联系人进入，发送进程推进他们。"""
    context: Context = ctx.obj
    journey = activate_journey(
        context.engine, workspace_id=context.workspace.id, name=name, now=_now()
    )
    if json_output:
        print_json({"name": journey.name, "status": journey.status, "version": journey.version})
    else:
        console.print(f"旅程「{journey.name}」已启用（第 {journey.version} 版）")


@journeys_app.command("pause")
@handle_errors
def pause(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """暂停：不再进入新联系人、不再推进；已排队的短信暂缓发送。"""
    context: Context = ctx.obj
    held = pause_journey(context.engine, workspace_id=context.workspace.id, name=name, now=_now())
    if json_output:
        print_json({"name": name, "status": "paused", "messages_held": held})
    else:
        console.print(f"旅程「{name}」已暂停，暂缓 {held} 条短信")


@journeys_app.command("enrol")
@handle_errors
def enrol(
    ctx: typer.Context,
    name: Name,
    phone: Annotated[str, typer.Argument(help="手机号")],
    json_output: JsonFlag = False,
) -> None:
    """手动让一个号码进入运行中的旅程（试用自己的手机）；重复进入规则照样适用。"""
    context: Context = ctx.obj
    entered = enrol_contact(
        context.engine, workspace_id=context.workspace.id, name=name, phone=phone, now=_now()
    )
    if json_output:
        print_json({"name": name, "phone": phone, "entered": entered})
    elif entered:
        console.print(f"{phone} 已进入旅程「{name}」")
    else:
        console.print(f"{phone} 未进入：已在旅程中，或重复进入规则不允许")


@journeys_app.command("stats")
@handle_errors
def stats(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """每一步：进入、等待、发送、点击、转化、退出（按原因）。"""
    context: Context = ctx.obj
    report = journey_stats(context.engine, workspace_id=context.workspace.id, name=name)
    if json_output:
        print_json(report)
        return
    counts = report["enrolments"]
    console.print(
        f"旅程「{report['journey']}」{STATUS_LABELS[report['status']]}："
        f"在旅程中 {counts['active']}，已完成 {counts['completed']}，已退出 {counts['exited']}"
    )
    table = Table("步骤", "类型", "进入", "等待", "发送", "送达", "不发送", "点击", "转化", "离开")
    for step in report["steps"]:
        table.add_row(
            step["step"],
            step["type"],
            str(step["entered"]),
            str(step["waiting"]),
            str(step["sent"] + step["pending"]) if step["type"] == "send" else "",
            str(step["delivered"]) if step["type"] == "send" else "",
            _reasons(step["blocked"], blocked=True),
            str(step["clicked"]) if step["type"] == "send" else "",
            str(step["converted"]) if step["type"] == "send" else "",
            _reasons(step["exited"], blocked=False),
        )
    console.print(table)


def _reasons(counts: dict[str, int], *, blocked: bool) -> str:
    def label(key: str) -> str:
        if blocked:
            try:
                return BlockReason(key).label
            except ValueError:
                return key
        return EXIT_LABELS.get(key, key)

    return "，".join(f"{label(k)} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


@journeys_app.command("builtins")
@handle_errors
def builtins(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Argument(help="查看某个内置旅程的完整定义")] = None,
    json_output: JsonFlag = False,
) -> None:
    """内置旅程：欢迎、购物车挽回、复购、会员关怀、沉睡唤醒、生日、发货通知。"""
    if key is not None:
        builtin = get_builtin(key)
        document = {
            "key": builtin.key,
            "name": builtin.name,
            "description": builtin.description,
            "definition": builtin.definition,
            "templates": [
                {"name": t.name, "kind": t.kind, "body": t.body} for t in builtin.templates
            ],
        }
        if json_output:
            print_json(document)
        else:
            console.print(f"[bold]{builtin.name}[/]（{builtin.key}）：{builtin.description}")
            for t in builtin.templates:
                console.print(f"  模板「{t.name}」：{t.body}", highlight=False)
            console.print_json(json.dumps(builtin.definition, ensure_ascii=False))
        return
    if json_output:
        print_json(
            [
                {"key": b.key, "name": b.name, "description": b.description}
                for b in BUILTINS.values()
            ]
        )
        return
    table = Table("标识", "名称", "说明")
    for b in BUILTINS.values():
        table.add_row(b.key, b.name, b.description)
    console.print(table)


@journeys_app.command("run")
@handle_errors
def run(
    ctx: typer.Context,
    until_idle: Annotated[
        bool, typer.Option(help="处理完当前到期的工作后退出（脚本、演示用）")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(help="每批认领的旅程成员数", min=1, max=10_000)
    ] = 1_000,
    json_output: JsonFlag = False,
) -> None:
    """运行旅程进程：读取事件与退订、按时触发、推进到期成员并规划短信（经合规闸门）。

    echelon worker 已包含它；单独运行便于扩容。Ctrl-C 或 SIGTERM 会在当前批次提交后退出。"""
    context: Context = ctx.obj
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = RunnerOptions(batch_size=batch_size)
    started = time.monotonic()
    if until_idle:
        runner = JourneyRunner(context.engine, options)
        total = PassSummary()
        while True:
            done = runner.advance(_now())
            total.add(done)
            if not done.work:
                break
    else:
        total = asyncio.run(_run_forever(context, options))
    summary: dict[str, Any] = {
        "entered": total.entered,
        "advanced": total.advanced,
        "woken": total.woken,
        "exited": {k: v for k, v in total.exited.items() if v},
        "messages": dict(total.messages),
        "seconds": round(time.monotonic() - started, 2),
    }
    if json_output:
        print_json(summary)
    else:
        console.print(
            f"进入 {summary['entered']}，推进 {summary['advanced']}，"
            f"规划短信 {total.messages.total()}，用时 {summary['seconds']} 秒"
        )


async def _run_forever(context: Context, options: RunnerOptions) -> PassSummary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return await run_journeys(context.engine, stop, options=options)
