"""``echelon channels …`` (add, edit, list, show, disable, enable, test) and
``echelon simulator``. Passwords are stored, never printed: every record shown comes
from ``ChannelRecord``, whose config has the password masked."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from echelon.channels.base import BindFailed
from echelon.channels.binds import SmppBinds
from echelon.channels.pdu import BindMode
from echelon.channels.smpp import SmppChannel, SmppConfig
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json
from echelon.dispatch.channel_admin import (
    ChannelRecord,
    add_channel,
    channel_connection,
    disable_channel,
    edit_channel,
    enable_channel,
    get_channel,
    list_channels,
    smpp_config,
)
from echelon.errors import EchelonError

channels_app = typer.Typer(no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="通道名称")]
CarriersHelp = "运营商：all，或逗号分隔的 china_mobile,china_unicom,china_telecom,china_broadnet"


class ChannelTestFailed(EchelonError):
    code = "channel_test_failed"


def _show(record: ChannelRecord) -> None:
    config = record.config
    state = "启用" if record.enabled else "[yellow]停用[/]"
    console.print(f"通道「{record.name}」（SMPP，{state}）", highlight=False)
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("地址", record.address)
    table.add_row("账号 system_id", config["system_id"])
    table.add_row("密码", config["password"])
    table.add_row("system_type", config["system_type"] or "—")
    table.add_row("绑定方式", f"{config['bind_mode']} × {record.binds}")
    table.add_row("每秒条数 tps", str(config["tps"] or "不限"))
    table.add_row("窗口", str(config["window"]))
    table.add_row("运营商", ",".join(record.carriers))
    table.add_row("权重 / 优先级", f"{record.weight} / {record.priority}")
    console.print(table)


@channels_app.command("add")
@handle_errors
def add(
    ctx: typer.Context,
    name: Name,
    host: Annotated[str, typer.Option(help="SMSC 主机")],
    system_id: Annotated[str, typer.Option(help="SMPP 账号 system_id")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="SMPP 密码（不填则提示输入）")
    ],
    port: Annotated[int, typer.Option(help="SMSC 端口")] = 2775,
    system_type: Annotated[str, typer.Option(help="SMPP system_type")] = "",
    bind: Annotated[BindMode, typer.Option(help="绑定方式")] = BindMode.TRANSCEIVER,
    binds: Annotated[int, typer.Option(help="同时保持的绑定（连接）数")] = 1,
    tps: Annotated[int | None, typer.Option(help="每秒最多提交条数（默认不限）")] = None,
    window: Annotated[int, typer.Option(help="未应答 submit_sm 的上限")] = 100,
    carriers: Annotated[str, typer.Option(help=CarriersHelp)] = "all",
    weight: Annotated[int, typer.Option(help="同优先级通道间的分流权重")] = 1,
    priority: Annotated[int, typer.Option(help="优先级（数字小者优先）")] = 0,
    json_output: JsonFlag = False,
) -> None:
    """添加一个 SMPP 通道。"""
    context: Context = ctx.obj
    config = smpp_config(
        {
            "name": name,
            "host": host,
            "port": port,
            "system_id": system_id,
            "password": password,
            "system_type": system_type,
            "bind_mode": bind,
            "tps": tps,
            "window": window,
        }
    )
    record = add_channel(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        config=config,
        carriers=carriers.split(","),
        weight=weight,
        priority=priority,
        binds=binds,
        now=datetime.now(UTC),
    )
    if json_output:
        print_json(record.to_json())
    else:
        console.print(f"已添加通道「{record.name}」（{record.address}）", highlight=False)


@channels_app.command("edit")
@handle_errors
def edit(
    ctx: typer.Context,
    name: Name,
    host: Annotated[str | None, typer.Option(help="SMSC 主机")] = None,
    port: Annotated[int | None, typer.Option(help="SMSC 端口")] = None,
    system_id: Annotated[str | None, typer.Option(help="SMPP 账号 system_id")] = None,
    password: Annotated[str | None, typer.Option(help="SMPP 密码")] = None,
    system_type: Annotated[str | None, typer.Option(help="SMPP system_type")] = None,
    bind: Annotated[BindMode | None, typer.Option(help="绑定方式")] = None,
    binds: Annotated[int | None, typer.Option(help="同时保持的绑定（连接）数")] = None,
    tps: Annotated[int | None, typer.Option(help="每秒最多提交条数")] = None,
    window: Annotated[int | None, typer.Option(help="未应答 submit_sm 的上限")] = None,
    carriers: Annotated[str | None, typer.Option(help=CarriersHelp)] = None,
    weight: Annotated[int | None, typer.Option(help="分流权重")] = None,
    priority: Annotated[int | None, typer.Option(help="优先级（数字小者优先）")] = None,
    json_output: JsonFlag = False,
) -> None:
    """修改通道设置：只改给出的项。"""
    context: Context = ctx.obj
    record = edit_channel(
        context.engine,
        workspace_id=context.workspace.id,
        name=name,
        now=datetime.now(UTC),
        host=host,
        port=port,
        system_id=system_id,
        password=password,
        system_type=system_type,
        bind_mode=bind,
        binds=binds,
        tps=tps,
        window=window,
        carriers=None if carriers is None else carriers.split(","),
        weight=weight,
        priority=priority,
    )
    if json_output:
        print_json(record.to_json())
    else:
        console.print(f"已修改通道「{record.name}」", highlight=False)
        _show(record)


@channels_app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """列出工作区的全部通道。"""
    context: Context = ctx.obj
    records = list_channels(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json([record.to_json() for record in records])
        return
    if not records:
        console.print("还没有通道；用 `echelon channels add` 添加")
        return
    table = Table("名称", "地址", "绑定", "tps", "运营商", "权重", "优先级", "状态")
    for record in records:
        table.add_row(
            record.name,
            record.address,
            f"{record.config['bind_mode']} × {record.binds}",
            str(record.config["tps"] or "不限"),
            ",".join(record.carriers),
            str(record.weight),
            str(record.priority),
            "启用" if record.enabled else "停用",
        )
    console.print(table)


@channels_app.command("show")
@handle_errors
def show(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """查看一个通道的设置（密码不显示）。"""
    context: Context = ctx.obj
    record = get_channel(context.engine, workspace_id=context.workspace.id, name=name)
    if json_output:
        print_json(record.to_json())
    else:
        _show(record)


@channels_app.command("disable")
@handle_errors
def disable(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """停用通道：保留设置，不再用于发送。"""
    context: Context = ctx.obj
    record = disable_channel(
        context.engine, workspace_id=context.workspace.id, name=name, now=datetime.now(UTC)
    )
    if json_output:
        print_json(record.to_json())
    else:
        console.print(f"已停用通道「{record.name}」", highlight=False)


@channels_app.command("enable")
@handle_errors
def enable(ctx: typer.Context, name: Name, json_output: JsonFlag = False) -> None:
    """重新启用通道。"""
    context: Context = ctx.obj
    record = enable_channel(
        context.engine, workspace_id=context.workspace.id, name=name, now=datetime.now(UTC)
    )
    if json_output:
        print_json(record.to_json())
    else:
        console.print(f"已启用通道「{record.name}」", highlight=False)


@channels_app.command("test")
@handle_errors
def bind_test(
    ctx: typer.Context,
    name: Name,
    timeout: Annotated[float, typer.Option(help="连接与绑定应答各自的等待秒数", min=0.1)] = 10.0,
    json_output: JsonFlag = False,
) -> None:
    """用保存的设置绑定（每个连接各一次），报告是否成功、用时与通道状态，然后解绑。"""
    context: Context = ctx.obj
    workspace_id = context.workspace.id
    config = channel_connection(context.engine, workspace_id=workspace_id, name=name)
    config = config.model_copy(update={"connect_timeout": timeout, "response_timeout": timeout})
    binds = get_channel(context.engine, workspace_id=workspace_id, name=name).binds
    report = asyncio.run(_probe(config, binds))
    if json_output:
        print_json(report)
        return
    health = report["health"]
    console.print(
        f"通道「{name}」已绑定 {report['address']}（{health['bind_mode']} × {report['binds']}），"
        f"用时 {report['bind_ms']} 毫秒",
        highlight=False,
    )


async def _probe(config: SmppConfig, binds: int) -> dict[str, Any]:
    """Bind each of the channel's sessions once and unbind (an SMSC may grant fewer
    binds than configured); a failed bind raises ``ChannelTestFailed``."""
    address = f"{config.host}:{config.port}"
    # A test bind acknowledges whatever the SMSC delivers without recording it.
    channel: SmppChannel | SmppBinds = (
        SmppBinds(config, lambda _inbound: None, binds=binds)
        if binds > 1
        else SmppChannel(config, lambda _inbound: None)
    )
    started = time.monotonic()
    try:
        await channel.start()
    except BindFailed as exc:
        # Over several binds the error says which one failed.
        reason = exc.message if binds > 1 else channel.health().last_error or exc.message
        raise ChannelTestFailed(f"通道「{config.name}」无法绑定 {address}：{reason}") from exc
    bind_ms = round((time.monotonic() - started) * 1000, 1)
    try:
        health = asdict(channel.health())
    finally:
        await channel.close()
    return {
        "channel": config.name,
        "address": address,
        "bound": True,
        "binds": binds,
        "bind_ms": bind_ms,
        "health": health,
    }


@handle_errors
def simulator(
    port: Annotated[
        int | None, typer.Option(help="监听端口（默认取配置文件，或 2775）", min=1, max=65535)
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="模拟器配置（SimulatorConfig JSON）", exists=True)
    ] = None,
) -> None:
    """在前台运行 SMPP 短信中心模拟器（Ctrl-C 停止）。"""
    argv = [] if port is None else ["--port", str(port)]
    argv += [] if config is None else ["--config", str(config)]
    # smpp34 sizes its worker pool when first imported, and this process has imported
    # it already (the channel commands use its codec): the simulator runs in a fresh
    # interpreter with one worker, measured faster on 2 cores (see SimulatorProcess).
    env = {"SMPP34_WORKER_THREADS": "1", **os.environ}
    command = [sys.executable, "-m", "echelon.channels.simulator", *argv]
    os.execve(sys.executable, command, env)
