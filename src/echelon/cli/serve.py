"""``echelon serve``: the HTTP API and, in the same process and event loop, the
dispatcher and webhook deliveries — one process for everything on SQLite."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

from echelon.access.settings import AccessSettings
from echelon.api.app import create_app
from echelon.cli.output import Context, console, fail, handle_errors
from echelon.db.migrate import current_revision, head_revision


@handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口", min=1, max=65535)] = 8000,
    workers: Annotated[
        bool,
        typer.Option(
            "--workers/--no-workers",
            help="同一进程内运行发送进程（PostgreSQL 部署可关掉，另行运行 echelon worker）",
        ),
    ] = True,
) -> None:
    """启动 HTTP API（/api/v1，文档在 /api/v1/docs）与发送进程。Ctrl-C 停止。"""
    context: Context = ctx.obj
    if current_revision(context.engine) != head_revision():
        raise fail("数据库尚未初始化或不是最新版本：请先运行 `echelon init`")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(context.engine, context.settings, access=AccessSettings(), workers=workers)
    console.print(
        f"echelon API：http://{host}:{port}/api/v1/docs（{'含' if workers else '不含'}发送进程）"
    )
    # The standard event loop: the SMPP sessions of the dispatcher need asyncio's own
    # transports, which uvloop's are not.
    config = uvicorn.Config(app, host=host, port=port, loop="asyncio", log_level="info")
    uvicorn.Server(config).run()
