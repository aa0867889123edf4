"""The root of the ``echelon`` command: global options, ``init`` and the sub-commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from echelon.audience.phone import Carrier
from echelon.cli.audit import audit
from echelon.cli.campaigns import campaigns_app
from echelon.cli.channels import channels_app, simulator
from echelon.cli.consent import consent_app, suppress_app
from echelon.cli.contacts import contacts_app, events_app
from echelon.cli.content import content_app, words_app
from echelon.cli.coupons import coupons_app
from echelon.cli.journeys import journeys_app
from echelon.cli.keys import keys_app
from echelon.cli.output import Context, console, handle_errors, print_json, progress_bar
from echelon.cli.policies import compliance, dispatch
from echelon.cli.report import report_app
from echelon.cli.segments import segments_app
from echelon.cli.serve import serve
from echelon.cli.templates import templates_app
from echelon.cli.users import users_app
from echelon.cli.webhooks import webhooks_app
from echelon.cli.worker import worker
from echelon.cli.workspace import workspace_app
from echelon.compliance.rules import BlockReason
from echelon.config import Settings
from echelon.db.migrate import current_revision, upgrade
from echelon.runtime.demo import DemoOptions, run_demo
from echelon.workspaces.service import DEFAULT_TIMEZONE, create_workspace

app = typer.Typer(
    name="echelon",
    help="echelon 梯队：自托管的短信营销与自动化平台。",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(contacts_app, name="contacts", help="联系人：导入、查看、导出、统计。")
app.add_typer(consent_app, name="consent", help="营销/通知同意：授予与撤回。")
app.add_typer(suppress_app, name="suppress", help="屏蔽名单：退订、黑名单、免打扰、空号。")
app.add_typer(events_app, name="events", help="行为事件：购买、加购、注册、发货……")
app.add_typer(workspace_app, name="workspace", help="工作区设置：默认签名、退订语、价格方案。")
app.add_typer(content_app, name="content", help="短信内容：合成、计字数条数、查敏感词。")
app.add_typer(words_app, name="words", help="工作区敏感词库：添加、删除、查看。")
app.add_typer(templates_app, name="templates", help="短信模板：编写、审核、预览。")
app.add_typer(
    campaigns_app, name="campaigns", help="群发活动：新建、预览、开始、暂停、取消、进度。"
)
app.add_typer(channels_app, name="channels", help="短信通道：添加、修改、查看、测试、停用。")
app.add_typer(segments_app, name="segments", help="分群：定义、预设、实时人数、成员、导出。")
app.add_typer(journeys_app, name="journeys", help="旅程（梯队）：事件触发的自动化短信序列。")
app.add_typer(report_app, name="report", help="数据报表：活动效果、概览、通道健康度、导出、告警。")
app.add_typer(coupons_app, name="coupons", help="优惠券：核销、生成、导出。")
app.add_typer(
    webhooks_app, name="webhooks", help="Webhook：把回执、回复、退订、点击、转化推送给你的系统。"
)
app.command("simulator")(simulator)
app.command("worker")(worker)
app.command("serve")(serve)
app.command("audit")(audit)
app.add_typer(users_app, name="users", help="控制台用户：新建、查看；角色决定权限。")
app.add_typer(keys_app, name="keys", help="API 密钥：新建（只显示一次）、查看、撤销。")
workspace_app.command("compliance")(compliance)
workspace_app.command("dispatch")(dispatch)


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(help="数据库地址（默认取 ECHELON_DATABASE_URL，或 ./echelon.db）"),
    ] = None,
    workspace: Annotated[
        str | None, typer.Option(help="工作区标识（默认取 ECHELON_WORKSPACE，或 default）")
    ] = None,
) -> None:
    settings = Settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    if workspace:
        settings = settings.model_copy(update={"workspace": workspace})
    ctx.obj = Context(settings)


@app.command()
@handle_errors
def init(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="工作区名称")] = "默认工作区",
    timezone: Annotated[str, typer.Option(help="工作区时区")] = DEFAULT_TIMEZONE,
    json_output: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """创建或升级数据库，并创建第一个工作区。"""
    context: Context = ctx.obj
    before = current_revision(context.engine)
    upgrade(context.engine)
    after = current_revision(context.engine)
    workspace, created = create_workspace(
        context.engine, slug=context.settings.workspace, name=name, timezone=timezone
    )
    result = {
        "database": context.engine.url.render_as_string(hide_password=True),
        "schema_before": before,
        "schema": after,
        "workspace": workspace.slug,
        "workspace_created": created,
        "at": datetime.now(UTC),
    }
    if json_output:
        print_json(result)
        return
    console.print(f"数据库 {result['database']} 已就绪（版本 {after}）")
    state = "已创建" if created else "已存在"
    console.print(
        f"工作区 [bold]{workspace.slug}[/]（{workspace.name}，{workspace.timezone}）{state}"
    )


@app.command()
@handle_errors
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="演示数据目录（每次重建）")] = Path(
        "demo-data"
    ),
    contacts: Annotated[int, typer.Option(help="生成的联系人数", min=100)] = 10_000,
    json_output: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """一条命令跑通主流程：建库、导入会员、退订、模板审核、活动规划（经合规闸门），
    再经 SMPP 发往内置短信中心模拟器，收回执与上行退订，汇总送达、失败、时延和费用。"""
    with progress_bar("导入示例会员", enabled=not json_output) as progress:
        summary = run_demo(DemoOptions(directory=directory, contacts=contacts), progress)
    if json_output:
        print_json(summary)
        return
    table = Table(title="echelon 演示", show_header=False)
    table.add_row("数据库", summary["database"])
    table.add_row("读取行数", str(summary["rows"]))
    table.add_row("导入联系人", str(summary["imported"]))
    reasons = "，".join(f"{k} {v}" for k, v in summary["rejected_by_reason"].items())
    table.add_row("拒绝", f"{summary['rejected']}（{reasons}）" if reasons else "0")
    table.add_row("有营销同意", str(summary["marketing_consent"]))
    table.add_row("导入的退订名单", str(summary["opt_outs_imported"]))
    table.add_row("可营销触达", str(summary["marketing_reachable"]))
    carriers = "，".join(
        f"{Carrier(k).label if k != 'unknown' else '未知'} {v}"
        for k, v in sorted(summary["by_carrier"].items(), key=lambda kv: -kv[1])
    )
    table.add_row("运营商分布", carriers)
    table.add_row("活动规划", f"{summary['planned']} 条待发送，共 {summary['parts']} 条计费")
    blocked = "，".join(f"{BlockReason(k).label} {v}" for k, v in summary["blocked"].items())
    table.add_row("不发送", blocked or "0")
    table.add_row("预计费用", f"¥{summary['estimated_cost_yuan']}")
    table.add_row("示例短信", summary["sample"] or "")
    table.add_row("已提交", str(summary["sent"]))
    table.add_row("已送达", str(summary["delivered"]))
    failed = "，".join(f"{code} {n}" for code, n in summary["failed"].items())
    table.add_row("未送达（错误码）", failed or "0")
    if summary["awaiting_receipt"]:
        table.add_row("仍在等回执", str(summary["awaiting_receipt"]))
    latency = summary["latency_ms"]
    table.add_row("送达时延", f"p50 {latency['p50']} ms，p95 {latency['p95']} ms")
    table.add_row("上行回复", f"{summary['replies']}（其中退订 {summary['opt_outs']}）")
    table.add_row("实际费用", f"¥{summary['cost_yuan']}")
    table.add_row("用时", f"{summary['seconds']} 秒")
    console.print(table)


def main() -> None:
    app()
