"""``echelon webhooks …``: endpoints that receive receipts, replies, opt-outs, clicks
and conversions; a test delivery; the delivery log; the worker that posts them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import httpx
import typer
from rich.table import Table

from echelon.analytics.webhook_worker import deliver_due, run_webhook_worker
from echelon.analytics.webhooks import (
    EVENT_LABELS,
    EVENTS,
    add_webhook,
    enqueue_test,
    list_deliveries,
    list_webhooks,
    remove_webhook,
)
from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json

webhooks_app = typer.Typer(no_args_is_help=True)


@webhooks_app.command("add")
@handle_errors
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="接收地址，如 https://crm.example.com/hooks/sms")],
    event: Annotated[
        list[str] | None,
        typer.Option(help=f"订阅的事件，可重复（默认全部）：{', '.join(EVENTS)}"),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """添加 Webhook；签名密钥只显示这一次。"""
    context: Context = ctx.obj
    hook, secret = add_webhook(
        context.engine,
        workspace_id=context.workspace.id,
        url=url,
        events=event or [],
        now=datetime.now(UTC),
    )
    if json_output:
        print_json({**asdict(hook), "secret": secret})
        return
    events = "、".join(EVENT_LABELS[e] for e in hook.events)
    console.print(f"已添加 Webhook {hook.id}：{hook.url}（{events}）")
    console.print(f"签名密钥（请妥善保存，之后不再显示）：[bold]{secret}[/]")
    console.print(
        "校验：X-Echelon-Signature = sha256=HMAC_SHA256(密钥, 时间戳 + '.' + 请求体)，"
        "时间戳见 X-Echelon-Timestamp"
    )


@webhooks_app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """全部 Webhook 及其投递情况。"""
    context: Context = ctx.obj
    found = list_webhooks(context.engine, workspace_id=context.workspace.id)
    if json_output:
        print_json([asdict(h) for h in found])
        return
    table = Table("ID", "地址", "事件", "待投递", "已投递", "失败", "最近错误")
    for h in found:
        table.add_row(
            str(h.id),
            h.url,
            "、".join(EVENT_LABELS[e] for e in h.events),
            str(h.pending),
            str(h.delivered),
            str(h.failed),
            h.last_error or "",
        )
    console.print(table)


@webhooks_app.command("test")
@handle_errors
def send_test(
    ctx: typer.Context,
    webhook_id: Annotated[int, typer.Argument(help="Webhook ID")],
    json_output: JsonFlag = False,
) -> None:
    """立即发送一条测试事件，显示对方的应答。"""
    context: Context = ctx.obj
    delivery = enqueue_test(
        context.engine,
        workspace_id=context.workspace.id,
        webhook_id=webhook_id,
        now=datetime.now(UTC),
    )

    async def send() -> None:
        async with httpx.AsyncClient() as client:
            await deliver_due(context.engine, client, delivery_id=delivery)

    asyncio.run(send())
    (log,) = [
        d
        for d in list_deliveries(
            context.engine, workspace_id=context.workspace.id, webhook_id=webhook_id
        )
        if d["id"] == delivery
    ]
    if json_output:
        print_json(log)
        return
    if log["status"] == "delivered":
        console.print(f"测试事件已送达（HTTP {log['last_status_code']}）")
    else:
        console.print(f"[bold red]测试事件未送达[/]：{log['last_error']}（将按退避策略重试）")


@webhooks_app.command("remove")
@handle_errors
def remove(
    ctx: typer.Context,
    webhook_id: Annotated[int, typer.Argument(help="Webhook ID")],
    json_output: JsonFlag = False,
) -> None:
    """删除 Webhook 及其投递记录。"""
    context: Context = ctx.obj
    remove_webhook(context.engine, workspace_id=context.workspace.id, webhook_id=webhook_id)
    if json_output:
        print_json({"removed": webhook_id})
    else:
        console.print(f"已删除 Webhook {webhook_id}")


@webhooks_app.command("log")
@handle_errors
def log(
    ctx: typer.Context,
    webhook_id: Annotated[int | None, typer.Argument(help="Webhook ID（默认全部）")] = None,
    limit: Annotated[int, typer.Option(help="显示条数", min=1, max=1000)] = 20,
    json_output: JsonFlag = False,
) -> None:
    """投递记录（最新在前）。"""
    context: Context = ctx.obj
    found = list_deliveries(
        context.engine, workspace_id=context.workspace.id, webhook_id=webhook_id, limit=limit
    )
    if json_output:
        print_json(found)
        return
    table = Table("ID", "Webhook", "事件", "状态", "尝试", "应答", "错误", "创建", "下次重试")
    for d in found:
        table.add_row(
            str(d["id"]),
            str(d["webhook_id"]),
            EVENT_LABELS[d["event"]],
            d["status"],
            str(d["attempts"]),
            str(d["last_status_code"] or ""),
            d["last_error"] or "",
            context.local(d["created_at"]),
            context.local(d["next_attempt_at"]) if d["status"] == "pending" else "",
        )
    console.print(table)


@webhooks_app.command("run")
@handle_errors
def run(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="空闲时轮询间隔（秒）", min=0.1)] = 1.0,
) -> None:
    """运行 Webhook 投递进程，直到 Ctrl-C。"""
    context: Context = ctx.obj

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await run_webhook_worker(context.engine, stop=stop, interval=interval)

    console.print("Webhook 投递进程已启动（Ctrl-C 停止）")
    asyncio.run(serve())
