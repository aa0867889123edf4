"""``echelon worker``: the dispatcher as a process, against any database, with the
rest of the background work beside it (``runtime.workers``: journeys — events enter
their journeys within about a second — webhooks, attribution and alerts, A/B winners,
housekeeping)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from echelon.cli.output import Context, console, handle_errors, print_json
from echelon.dispatch.dispatcher import Dispatcher, DispatchOptions, DispatchStats, default_holder
from echelon.journeys.batch import PassSummary
from echelon.journeys.runner import JourneyRunner
from echelon.runtime.workers import companions, supervised

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@handle_errors
def worker(
    ctx: typer.Context,
    until_idle: Annotated[
        bool, typer.Option(help="发完当前到期的消息并等到回执后退出（脚本、演示用）")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="每批认领条数", min=1, max=10_000)] = 1_000,
    in_flight: Annotated[int, typer.Option(help="同时在途的批数", min=1, max=64)] = 4,
    receipt_wait: Annotated[
        float, typer.Option(help="--until-idle 时最后等待回执的秒数", min=0)
    ] = 30.0,
    lease_ttl: Annotated[
        float, typer.Option(help="通道租约秒数：进程崩溃后别的进程最多等这么久接管", min=1)
    ] = 15.0,
    holder: Annotated[str | None, typer.Option(help="本进程的租约名（默认 主机名:进程号）")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="结束时输出 JSON 统计")] = False,
) -> None:
    """运行发送进程：认领到期消息、二次合规检查、路由到通道、提交并接收回执与上行；
    同时运行旅程（梯队）：事件触发进入、按步骤推进、把到期的消息经合规检查放入发送队列。

    可在任意多台机器上同时运行（PostgreSQL）；每个通道同一时间只由一个进程持有。
    Ctrl-C 或 SIGTERM 会发完在途批次、关闭通道后退出。"""
    context: Context = ctx.obj
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = DispatchOptions(
        holder=holder or default_holder(),
        batch_size=batch_size,
        max_in_flight=in_flight,
        lease_ttl=timedelta(seconds=lease_ttl),
        refresh_interval=min(3.0, lease_ttl / 3),
    )
    if not json_output:
        console.print(f"发送进程 {options.holder} 启动（{'发完即退出' if until_idle else '常驻'}）")
    stats, journeys = asyncio.run(_run(context, options, until_idle, receipt_wait))
    if json_output:
        print_json(stats_json(stats, journeys))
        return
    console.print(
        f"已提交 {stats.submitted}，回执 {stats.receipts}，上行 {stats.replies}"
        f"（退订 {stats.opt_outs}），重试 {stats.retried}，失败 {sum(stats.failed.values())}；"
        f"旅程：进入 {journeys.entered}，规划短信 {journeys.messages.total()}"
    )


async def _run(
    context: Context, options: DispatchOptions, until_idle: bool, receipt_wait: float
) -> tuple[DispatchStats, PassSummary]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    dispatcher = Dispatcher(context.engine, options=options)
    if until_idle:
        # Journey steps already due are planned first, so that this drain sends them too.
        await asyncio.to_thread(JourneyRunner(context.engine).advance, datetime.now(UTC))
    work = companions(context.engine, stop)
    journeys = asyncio.create_task(work.pop("journeys"), name="journeys")
    others = [supervised(name, coroutine) for name, coroutine in work.items()]
    try:
        stats = await dispatcher.run(stop, until_idle=until_idle, receipt_wait=receipt_wait)
    finally:
        # The dispatcher is done (idle, or stopped): let the others end their pass (each
        # commits as it goes, so stopping between passes loses nothing).
        stop.set()
        summary = await journeys
        await asyncio.gather(*others, return_exceptions=True)
    return stats, summary


def stats_json(stats: DispatchStats, journeys: PassSummary | None = None) -> dict[str, Any]:
    data = asdict(stats)
    data["blocked"] = dict(stats.blocked)
    data["failed"] = dict(stats.failed)
    if journeys is not None:
        data["journeys"] = {
            "entered": journeys.entered,
            "advanced": journeys.advanced,
            "woken": journeys.woken,
            "exited": {k: v for k, v in journeys.exited.items() if v},
            "messages": dict(journeys.messages),
        }
    return data
