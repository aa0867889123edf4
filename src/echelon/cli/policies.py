"""``echelon workspace compliance`` and ``workspace dispatch``: the rules a workspace
sends under, shown and changed with ``--set name=value`` (repeatable).

Values are read as JSON when they parse (numbers, lists, objects), else as text, so
``--set quiet_start=22:00``, ``--set marketing_max=6`` and
``--set 'auto_replies=[{"keyword": "营业时间", "reply": "10:00-22:00"}]'`` all work.
Only what is set is stored; everything else follows the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.table import Table
from sqlalchemy import Connection

from echelon.cli.options import JsonFlag
from echelon.cli.output import Context, console, handle_errors, print_json
from echelon.compliance.policy import load_settings, save_settings
from echelon.dispatch.settings import load_dispatch_settings, save_dispatch_settings
from echelon.errors import InvalidInput

SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="修改一项：名称=值（可重复；值可写 JSON）")
]

_COMPLIANCE_LABELS = {
    "quiet_start": "营销发送窗口开始",
    "quiet_end": "营销发送窗口结束",
    "marketing_max": "每人营销条数上限",
    "marketing_window_days": "……统计天数",
    "marketing_min_gap_hours": "两条营销最短间隔（小时）",
    "per_minute": "单号码每分钟上限",
    "per_hour": "单号码每小时上限",
    "per_day": "单号码每天上限",
    "duplicate_window_seconds": "相同内容去重（秒）",
}
_DISPATCH_LABELS = {
    "max_attempts": "每条最多提交次数",
    "failover_after": "同一通道失败几次后换通道",
    "retry_base_seconds": "首次重试等待（秒）",
    "retry_max_seconds": "重试等待上限（秒）",
    "opt_out_keywords": "退订关键词",
    "opt_out_confirmation": "退订确认回复",
    "auto_replies": "关键词自动回复",
    "auto_reply_cooldown_seconds": "同一号码自动回复间隔（秒）",
    "invalid_codes": "空号类错误码",
    "invalid_after": "几次空号后列入空号名单",
}


def parse_changes(pairs: list[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--set {pair!r} 无效：应写作 名称=值")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        changes[name.strip()] = value
    return changes


def _show(title: str, settings: BaseModel, labels: dict[str, str], json_output: bool) -> None:
    data = settings.model_dump(mode="json")
    if json_output:
        print_json(data)
        return
    table = Table(title=title)
    table.add_column("名称")
    table.add_column("说明")
    table.add_column("值")
    for name, value in data.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(name, labels.get(name, ""), shown)
    console.print(table)


def _command(
    title: str,
    labels: dict[str, str],
    load: Callable[[Connection, int], BaseModel],
    save: Callable[[Connection, int, dict[str, Any]], BaseModel],
) -> Callable[..., None]:
    @handle_errors
    def command(ctx: typer.Context, set_: SetOption = None, json_output: JsonFlag = False) -> None:
        context: Context = ctx.obj
        workspace_id = context.workspace.id
        with context.engine.begin() as conn:
            settings = (
                save(conn, workspace_id, parse_changes(set_)) if set_ else load(conn, workspace_id)
            )
        _show(title, settings, labels, json_output)

    return command


compliance = _command(
    "合规规则（发送窗口、频次与单号码限速）",
    _COMPLIANCE_LABELS,
    lambda conn, workspace_id: load_settings(conn, workspace_id)[0],
    save_settings,
)
compliance.__doc__ = "查看或修改合规规则：营销发送窗口、频次上限、单号码限速、去重。"
dispatch = _command(
    "发送规则（重试、换通道、上行关键词、空号识别）",
    _DISPATCH_LABELS,
    load_dispatch_settings,
    save_dispatch_settings,
)
dispatch.__doc__ = "查看或修改发送规则：重试与换通道、退订关键词、自动回复、空号错误码。"
