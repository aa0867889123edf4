"""``echelon report``, ``coupons`` and ``webhooks`` against both databases."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from analytics_support import Outbox, endpoint, fill_outbox
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


@pytest.fixture
def outbox(engine: Engine, workspace: Workspace) -> Outbox:
    return fill_outbox(engine, workspace.id)


def test_report_commands(engine: Engine, outbox: Outbox, tmp_path: Path) -> None:
    assert cli_json(engine, "report", "thresholds", "--min-sample", "5")["min_sample"] == 5
    report = cli_json(
        engine,
        "report",
        "campaign",
        "双11",
        "--by",
        "channel",
        "--export",
        str(tmp_path / "r.xlsx"),
    )
    assert report["total"]["sent"] == 8 and report["total"]["revenue"] == "150.50"
    assert [g["label"] for g in report["groups"]] == ["移动一号", "联通二号", "未分配通道"]
    assert report["exported"]["rows"] == 4 and (tmp_path / "r.xlsx").exists()
    assert {a["metric"] for a in report["alerts"]} == {
        "delivery_rate",
        "complaint_rate",
        "opt_out_rate",
    }
    code, out, _ = cli(engine, "report", "campaign", str(outbox.campaign_id), "--by", "carrier")
    assert code == 0 and "中国移动" in out and "送达率 62.50% 未达标" in out and "告警" in out
    assert len(cli_json(engine, "report", "alerts")) == 3
    changed = cli_json(
        engine, "report", "thresholds", "click_rate", "--pass", "30%", "--excellent", "45"
    )
    assert (
        changed["levels"]["click_rate"]["passing"],
        changed["levels"]["click_rate"]["excellent"],
    ) == (
        0.3,
        0.45,
    )
    # The dashboard runs on the clock (figures against a fixed time: test_analytics_reports).
    board = cli_json(engine, "report", "dashboard")
    assert len(board["daily"]) == 30 and isinstance(board["channels"], list)
    assert set(board["today"]) >= {"planned", "delivery_rate", "roi", "complaint_rate"}
    exported = cli_json(
        engine,
        "report",
        "messages",
        str(tmp_path / "m.csv"),
        "--status",
        "delivered",
        "--campaign",
        "双11",
    )
    assert exported["rows"] == 5
    with (tmp_path / "m.csv").open(encoding="utf-8-sig") as handle:
        assert len(list(csv.reader(handle))) == 6


def test_report_errors_are_one_clear_line(engine: Engine, outbox: Outbox) -> None:
    code, _, err = cli(engine, "report", "campaign", "无此活动")
    assert code == 1 and "活动「无此活动」不存在" in err and "Traceback" not in err
    code, _, err = cli(engine, "report", "campaign", "双11", "--by", "city")
    assert code == 1 and "不能按 city 分组" in err
    code, _, err = cli(engine, "report", "thresholds", "click_rate", "--pass", "abc")
    assert code == 1 and "百分数" in err


def test_tracking_settings_complaints_and_attribution(
    engine: Engine, outbox: Outbox, tmp_path: Path
) -> None:
    settings = cli_json(
        engine, "report", "tracking", "--short-domain", "s.xinghe.cn", "--code-length", "6"
    )
    assert settings["example"] == "https://s.xinghe.cn/Ab3xK9"
    assert settings["short_link_length"] == 26 and settings["click_window_hours"] == 120
    path = tmp_path / "complaints.csv"
    path.write_text(
        "手机号,投诉时间,通道\n13800000004,2026-11-11 21:00,联通二号\n", encoding="utf-8"
    )
    imported = cli_json(engine, "report", "complaints", str(path))
    assert (imported["imported"], imported["unmatched"]) == (1, 0)
    assert cli_json(engine, "report", "attribute") == {
        "examined": 0,
        "credited": {},
        "already_credited": 0,
    }


def test_coupon_commands(engine: Engine, outbox: Outbox, tmp_path: Path) -> None:
    generated = cli_json(
        engine, "coupons", "generate", "双11", "--count", "3", "--export", str(tmp_path / "c.csv")
    )
    assert generated["generated"] == 3
    code = generated["codes"][0]
    redeemed = cli_json(
        engine, "coupons", "redeem", code.lower(), "--order", "T1", "--amount", "¥1,299.50"
    )
    assert (redeemed["code"], redeemed["amount_fen"], redeemed["credited"]) == (
        code,
        129_950,
        False,
    )
    failed, _, err = cli(engine, "coupons", "redeem", code, "--order", "T2", "--amount", "5")
    assert failed == 1 and "已于" in err and "T1" in err
    exported = cli_json(engine, "coupons", "export", "双11", str(tmp_path / "all.xlsx"))
    assert exported["rows"] == 3


def test_webhook_commands(engine: Engine, workspace: Workspace) -> None:
    with endpoint() as receiver:
        added = cli_json(
            engine, "webhooks", "add", receiver.url, "--event", "click", "--event", "conversion"
        )
        assert added["events"] == ["click", "conversion"] and len(added["secret"]) == 48
        sent = cli_json(engine, "webhooks", "test", str(added["id"]))
        assert (sent["status"], sent["last_status_code"]) == ("delivered", 200)
        assert len(receiver.received) == 1
    (listed,) = cli_json(engine, "webhooks", "list")
    assert (listed["url"], listed["delivered"]) == (receiver.url, 1)
    assert "secret" not in listed
    assert len(cli_json(engine, "webhooks", "log")) == 1
    assert cli_json(engine, "webhooks", "remove", str(added["id"])) == {"removed": added["id"]}
    code, _, err = cli(engine, "webhooks", "test", str(added["id"]))
    assert code == 1 and "不存在" in err
