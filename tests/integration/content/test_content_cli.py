"""``echelon content|words|workspace|templates`` on both databases: --json documents, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from content_support import write_contacts
from sqlalchemy import Engine
from typer.testing import CliRunner

from echelon.cli.app import app
from echelon.workspaces.service import Workspace

runner = CliRunner()


def cli(engine: Engine, *args: str) -> tuple[int, str, str]:
    url = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(app, ["--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def cli_json(engine: Engine, *args: str) -> Any:
    code, out, err = cli(engine, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_content_check_prints_exactly_the_documented_json(tmp_path: Path) -> None:
    # No database at all: the check still works with --signature, and creates none.
    missing = tmp_path / "nowhere.db"

    def offline(*args: str) -> Any:
        return runner.invoke(app, ["--database-url", f"sqlite:///{missing}", "content", *args])

    result = offline("check", "全场最佳，点击领取", "--signature", "星河商城", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "text": "【星河商城】全场最佳，点击领取，拒收请回复R",
        "encoding": "UCS-2",
        "characters": 22,
        "parts": 1,
        "remaining": 48,
        "hits": [
            {
                "word": "最佳",
                "category": "absolute",
                "severity": "block",
                "suggestion": "优选",
                "start": 8,
                "end": 10,
            },
            {
                "word": "点击领取",
                "category": "inducing",
                "severity": "warn",
                "suggestion": "登录查看",
                "start": 11,
                "end": 15,
            },
        ],
    }
    assert not missing.exists()
    latin = offline("check", "Code 123456", "--kind", "verification", "--signature", "XH Mall")
    assert latin.exit_code == 0 and "UCS-2" in latin.stdout  # 【】 are not in GSM-7
    unsigned = offline("check", "你好")
    assert unsigned.exit_code == 1 and "--signature" in unsigned.stderr
    human = offline("check", "全场最佳", "--signature", "星河商城")
    assert "建议改为「优选」" in human.stdout and "1 条" in human.stdout


def test_content_check_uses_the_workspace_settings_and_words(
    engine: Engine, workspace: Workspace
) -> None:
    code, _, err = cli(engine, "content", "check", "你好")
    assert code == 1 and "还没有短信签名" in err
    settings = cli_json(
        engine, "workspace", "set", "--signature", "星河商城", "--opt-out", "回T退订"
    )
    assert settings["changed"] == ["signature", "opt_out_text"]
    cli_json(engine, "words", "add", "秒杀", "--severity", "warn", "--suggestion", "限时优惠")
    checked = cli_json(engine, "content", "check", "限时秒杀")
    assert checked["text"] == "【星河商城】限时秒杀，回T退订"
    assert [(h["word"], h["severity"], h["start"]) for h in checked["hits"]] == [
        ("秒杀", "warn", 8)
    ]
    code, out, _ = cli(engine, "content", "check", "限时秒杀")
    assert code == 0 and "限时优惠" in out


def test_workspace_settings_commands(engine: Engine, workspace: Workspace) -> None:
    shown = cli_json(engine, "workspace", "show")
    assert (shown["workspace"], shown["signature"], shown["opt_out_text"]) == (
        "default",
        None,
        "拒收请回复R",
    )
    changed = cli_json(
        engine,
        "workspace",
        "set",
        "--tier",
        "10000=0.05",
        "--tier",
        "0.045",
        "--peak",
        "off",
    )
    assert changed["changed"] == ["price_plan"]
    assert changed["price_plan"] == {
        "price_per_part": "0.045",
        "tiers": [{"up_to_parts": 10000, "price": "0.05"}],
        "peak": None,
        "timezone": "Asia/Shanghai",
    }
    assert cli_json(engine, "workspace", "set", "--price", "0.045")["changed"] == []
    code, _, err = cli(engine, "workspace", "set", "--tier", "0.04", "--price", "0.05")
    assert code == 1 and "只写一处" in err
    code, out, _ = cli(engine, "workspace", "show")
    assert code == 0 and "每月前 10,000 条 ¥0.05，之后 ¥0.045" in out


def test_words_commands(engine: Engine, workspace: Workspace) -> None:
    added = cli_json(engine, "words", "add", "秒杀", "--category", "inducing")
    assert (added["word"], added["category"], added["severity"], added["action"]) == (
        "秒杀",
        "inducing",
        "block",
        "added",
    )
    assert [w["word"] for w in cli_json(engine, "words", "list")] == ["秒杀"]
    assert cli_json(engine, "words", "remove", "秒 杀")["removed"] is True
    code, _, err = cli(engine, "words", "add", "x秒", "--category", "spam")
    assert code == 1 and "词语分类" in err


def test_template_lifecycle_through_the_cli(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    cli_json(engine, "workspace", "set", "--signature", "星河商城")
    cli_json(engine, "contacts", "import", str(write_contacts(tmp_path / "c.csv")))
    body = tmp_path / "body.txt"
    body.write_text("{{ name | default('会员') }}您好，专享{{ coupon }}券，详情{{ link }}", "utf-8")
    created = cli_json(engine, "templates", "create", "双11", "--body-file", str(body))
    assert created["created"] is True
    template = created["template"]
    assert (template["name"], template["kind"], template["review_status"]) == (
        "双11",
        "marketing",
        "draft",
    )
    assert template["variables"] == ["coupon", "link", "name"]

    submitted = cli_json(engine, "templates", "submit", "双11", "--by", "小王")
    assert submitted["status"] == {"from": "draft", "to": "pending"}
    approved = cli_json(engine, "templates", "approve", "双11", "--by", "老李")
    assert approved["template"]["reviewed_by"] == "老李"
    assert approved["changed"] == ["review_status"]

    preview = cli_json(
        engine, "templates", "preview", "双11", "--contact", "13800138000", "--coupon", "5元"
    )
    assert set(preview) == {
        "template",
        "review_status",
        "phone",
        "text",
        "encoding",
        "characters",
        "parts",
        "remaining",
        "cost",
        "hits",
        "links",
    }
    assert (
        preview["text"]
        == "【星河商城】张三您好，专享5元券，详情https://s.echelon.cn/------- 拒收请回复R"
    )
    assert (preview["parts"], preview["cost"], preview["links"]) == (1, "0.06", [])

    edited = cli_json(engine, "templates", "edit", "双11", "--kind", "service")
    assert edited["changed"] == ["kind", "review_status"]
    assert edited["status"] == {"from": "approved", "to": "pending"}
    rejected = cli_json(engine, "templates", "reject", "双11", "--reason", "通知类不能带优惠券")
    assert rejected["template"]["review_note"] == "通知类不能带优惠券"

    shown = cli_json(engine, "templates", "show", "双11")
    assert [h["action"] for h in shown["history"]] == [
        "created",
        "submitted",
        "approved",
        "edited",
        "rejected",
    ]
    assert shown["history"][2]["actor"] == "老李"
    listed = cli_json(engine, "templates", "list", "--status", "rejected")
    assert [t["name"] for t in listed] == ["双11"]
    lint = cli_json(engine, "templates", "lint", "双11")
    assert set(lint) == {"template", "text", "hits", "sample_text", "sample_hits", "blocked"}
    assert lint["blocked"] is False


def test_template_mistakes_are_one_line_and_a_nonzero_exit(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    cli_json(engine, "workspace", "set", "--signature", "星河商城")
    cli_json(engine, "contacts", "import", str(write_contacts(tmp_path / "c.csv")))
    cli_json(engine, "templates", "create", "问候", "--body", "{{ name }}您好")
    cases = [
        (["templates", "approve", "问候"], "草稿"),
        (["templates", "create", "坏", "--body", "{% for x in tags %}{% endfor %}"], "不支持"),
        (["templates", "create", "坏", "--body", "【星河】你好"], "【】"),
        (["templates", "create", "坏"], "--body"),
        (["templates", "preview", "问候", "--contact", "13900139000"], "缺少变量 name"),
        (["templates", "submit", "没有"], "模板「没有」不存在"),
        (["templates", "reject", "问候", "--reason", " "], "原因"),
    ]
    for args, expected in cases:
        code, out, err = cli(engine, *args)
        assert code == 1, args
        assert expected in err and "Traceback" not in err + out, (args, err)
