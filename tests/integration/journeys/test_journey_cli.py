"""``echelon journeys …`` against both databases: --json documents and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from echelon.cli.app import app
from echelon.content.review import approve_template
from echelon.workspaces.service import Workspace, update_settings

runner = CliRunner()


def cli(engine: Engine, *args: str) -> tuple[int, str, str]:
    url = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(app, ["--database-url", url, "journeys", *args])
    return result.exit_code, result.stdout, result.stderr


def cli_json(engine: Engine, *args: str) -> Any:
    code, out, err = cli(engine, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_journeys_from_builtin_to_stats(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    listed = cli_json(engine, "builtins")
    assert [b["key"] for b in listed] == [
        "welcome", "cart_abandonment", "purchase_nudge", "retention", "win_back", "birthday",
        "service_notice",
    ]  # fmt: skip
    shown = cli_json(engine, "builtins", "cart_abandonment")
    assert shown["definition"]["goal"] == {"event": "purchase"}
    created = cli_json(engine, "create", "--builtin", "cart_abandonment")
    assert created == {
        "name": "购物车挽回",
        "status": "draft",
        "templates": {"挽回-提醒": "pending", "挽回-专属券": "pending"},
    }
    code, _, err = cli(engine, "activate", "购物车挽回")
    assert code == 1 and "当前待审核，只有审核通过的模板才能用于发送" in err
    for name in created["templates"]:
        approve_template(
            engine, workspace_id=workspace.id, name=name, actor="审核", now=datetime.now(UTC)
        )
    assert cli_json(engine, "activate", "购物车挽回")["status"] == "active"
    code, _, err = cli(engine, "activate", "购物车挽回")
    assert code == 1 and "已在运行" in err
    assert cli_json(engine, "enrol", "购物车挽回", "13800138000")["entered"] is True
    assert cli_json(engine, "enrol", "购物车挽回", "13800138000")["entered"] is False
    ran = cli_json(engine, "run", "--until-idle")
    assert ran["advanced"] == 1 and ran["messages"] == {}  # waiting 24 h first
    stats = cli_json(engine, "stats", "购物车挽回")
    assert stats["enrolments"] == {"active": 1, "completed": 0, "exited": 0}
    assert stats["steps"][0] == {
        "step": "wait24h", "type": "wait", "entered": 1, "waiting": 1, "messages": 0,
        "pending": 0, "sent": 0, "delivered": 0, "blocked": {}, "clicked": 0, "converted": 0,
        "exited": {},
    }  # fmt: skip
    code, out, _ = cli(engine, "stats", "购物车挽回")
    assert code == 0 and "wait24h" in out
    assert cli_json(engine, "list")[0]["name"] == "购物车挽回"
    assert cli_json(engine, "show", "购物车挽回")["enrolments"] == {"active": 1}
    assert cli_json(engine, "pause", "购物车挽回")["status"] == "paused"

    source = tmp_path / "j.json"
    source.write_text(
        json.dumps(
            {
                "trigger": {"type": "event", "event": "signup"},
                "steps": [{"id": "hi", "type": "send", "template": "挽回-提醒"}],
            }
        ),
        encoding="utf-8",
    )
    assert cli_json(engine, "create", "欢迎", "--file", str(source))["status"] == "draft"
    source.write_text('{"trigger": {"type": "event", "event": "signup"}, "steps": [{"id": "hi"}]}')
    edited = cli(engine, "edit", "欢迎", "--file", str(source))
    assert edited[0] == 1
    assert '旅程定义有误：定义 › steps › 第 1 步（hi）：须有 "type"' in edited[2]
    source.write_text("{nope")
    code, _, err = cli(engine, "edit", "欢迎", "--file", str(source))
    assert code == 1 and "不是有效的 JSON：第 1 行第 2 列" in err
    code, _, err = cli(engine, "show", "没有这个")
    assert code == 1 and "旅程「没有这个」不存在" in err
