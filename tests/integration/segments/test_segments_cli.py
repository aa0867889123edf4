"""``echelon segments …`` against both databases: --json documents and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from echelon.cli.app import app
from echelon.workspaces.service import Workspace

runner = CliRunner()
AT = "2026-11-11T12:00+08:00"


def cli(engine: Engine, *args: str) -> tuple[int, str, str]:
    url = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(app, ["--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def cli_json(engine: Engine, *args: str) -> Any:
    code, out, err = cli(engine, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_create_count_members_export(engine: Engine, shop: Workspace, tmp_path: Path) -> None:
    definition = {"kind": "purchases", "measure": "count", "days": 30, "min": 1}
    created = cli_json(engine, "segments", "create", "近期购买", "-d", json.dumps(definition))
    assert created["definition"] == definition
    counted = cli_json(engine, "segments", "count", "近期购买", "--at", AT)
    assert counted["total"] == 2
    assert counted["by_carrier"] == {"china_mobile": 1, "china_telecom": 1}
    assert counted["by_province"] == {"广东省": 1, "浙江省": 1}
    members = cli_json(engine, "segments", "members", "近期购买", "--at", AT, "--limit", "1")
    assert [m["phone"] for m in members] == ["+8613800138000"]
    after = str(members[0]["id"])
    members = cli_json(engine, "segments", "members", "近期购买", "--at", AT, "--after", after)
    assert [m["phone"] for m in members] == ["+8613300133000"]
    target = str(tmp_path / "m.csv")
    exported = cli_json(engine, "segments", "export", "近期购买", target, "--at", AT)
    assert exported["exported"] == 2
    code, out, _ = cli(engine, "segments", "count", "近期购买", "--at", AT)
    assert code == 0 and "分群人数 2" in out and "中国移动 1" in out


def test_definition_from_a_file_presets_edit_show_list(
    engine: Engine, shop: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "gold.json"
    path.write_text(
        '{"kind": "attribute", "field": "attributes.会员等级", "op": "equals", "value": "金卡"}',
        encoding="utf-8",
    )
    cli_json(engine, "segments", "create", "金卡", "-d", f"@{path}")
    copied = cli_json(
        engine, "segments", "create", "--preset", "high_value", "--param", "threshold=1000"
    )
    assert (copied["name"], copied["definition"]["min"]) == ("高价值客户", 1000)
    edited = cli_json(
        engine,
        "segments",
        "edit",
        "高价值客户",
        "--rename",
        "千元客户",
        "-d",
        '{"and": [{"kind": "segment", "segment": "金卡"}, {"kind": "purchases", '
        '"measure": "total", "days": 365, "min": 1000}]}',
    )
    assert edited["name"] == "千元客户"
    assert cli_json(engine, "segments", "count", "千元客户", "--at", AT)["total"] == 1
    assert cli_json(engine, "segments", "show", "千元客户")["preset"] == "high_value"
    listed = cli_json(engine, "segments", "list")
    assert [s["name"] for s in listed] == ["千元客户", "金卡"]
    presets = cli_json(engine, "segments", "presets")
    assert {p["key"] for p in presets} >= {"dormant", "cart_abandon", "high_value"}
    code, out, _ = cli(engine, "segments", "list")
    assert code == 0 and "高价值客户" in out
    unsaved = cli_json(
        engine, "segments", "count", "-d", '{"kind": "gender", "value": "女"}', "--at", AT
    )
    assert unsaved["total"] == 2


def test_mistakes_are_one_line_and_a_nonzero_exit(engine: Engine, shop: Workspace) -> None:
    cases = [
        (["segments", "create", "x", "-d", "{oops"], "不是有效的 JSON"),
        (["segments", "create", "x", "-d", '{"kind": "age"}'], "定义（age）"),
        (["segments", "create", "x"], "二选一"),
        (["segments", "create", "--preset", "vip"], "预设「vip」不存在"),
        (["segments", "show", "nope"], "分群「nope」不存在"),
        (["segments", "count"], "请指定一个分群"),
        (["segments", "count", "-d", '{"kind": "consent"}', "--at", "2026-11-11"], "须带时区"),
    ]
    for args, expected in cases:
        code, _, err = cli(engine, *args)
        assert code == 1, args
        assert expected in err, (args, err)
        assert "Traceback" not in err
