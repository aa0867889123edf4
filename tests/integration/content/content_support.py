"""Shared values and helpers of the content tests (imported by name, as rootdir allows)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from echelon.content.templates import Template, create_template
from echelon.workspaces.service import Workspace

NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # noon in Shanghai, outside the peak hour
PEAK = datetime(2026, 11, 11, 12, 30, tzinfo=UTC)  # 20:30 in Shanghai
BODY = (
    "{{ name | default('会员') }}您好，双11会员专享{{ coupon }}券，"
    "详情{{ link('https://shop.cn/11') }}"
)
ZHANG, NAMELESS = "+8613800138000", "+8613900139000"

CONTACTS = [
    ["手机号", "姓名", "性别", "生日", "标签", "会员等级", "points"],
    ["13800138000", "张三", "男", "1990-05-17", "VIP|母婴", "金卡", "1200"],
    ["13900139000", "", "女", "", "", "", ""],
]


def write_contacts(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(CONTACTS)
    return path


def make(
    engine: Engine,
    workspace: Workspace,
    name: str = "双11",
    body: str = BODY,
    kind: str = "marketing",
    signature: str | None = None,
) -> Template:
    return create_template(
        engine,
        workspace_id=workspace.id,
        name=name,
        kind=kind,
        body=body,
        signature=signature,
        actor="运营小王",
        now=NOW,
    )
