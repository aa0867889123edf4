"""The ``echelon`` command against both databases: --json documents, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from echelon.cli.app import app
from echelon.db.migrate import head_revision
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


def test_init_is_idempotent(engine: Engine) -> None:
    first = cli_json(engine, "init")
    assert first["workspace_created"] is True and first["schema"] == head_revision()
    assert cli_json(engine, "init")["workspace_created"] is False


def test_import_show_count_export(engine: Engine, workspace: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text("手机号,姓名,标签\n13800138000,张三,VIP\nnope,坏,\n", encoding="utf-8")
    report = cli_json(engine, "contacts", "import", str(source), "--consent-source", "store")
    assert report["imported"] == 1 and report["rejected"] == 1
    assert Path(report["rejects_file"]).exists()
    shown = cli_json(engine, "contacts", "show", "138-0013-8000")
    assert (shown["name"], shown["tags"], shown["carrier"]) == ("张三", ["VIP"], "china_mobile")
    assert shown["consents"][0]["source"] == "store"
    counts = cli_json(engine, "contacts", "count")
    assert counts["marketing_reachable"] == 1
    exported = cli_json(engine, "contacts", "export", str(tmp_path / "out.csv"))
    assert exported["exported"] == 1
    code, out, _ = cli(engine, "contacts", "count")
    assert code == 0 and "可营销触达 1" in out


def test_consent_and_suppression_commands(engine: Engine, workspace: Workspace) -> None:
    granted = cli_json(engine, "consent", "grant", "13800138000", "--source", "web_form")
    assert granted["granted"] is True
    assert cli_json(engine, "suppress", "add", "13800138000", "--kind", "blacklist")["added"]
    listed = cli_json(engine, "suppress", "list")
    assert [(r["phone"], r["kind"]) for r in listed] == [("+8613800138000", "blacklist")]
    assert cli_json(engine, "contacts", "count")["marketing_reachable"] == 0
    assert cli_json(engine, "suppress", "remove", "13800138000", "--kind", "blacklist")["removed"]
    assert cli_json(engine, "consent", "revoke", "13800138000")["revoked"] is True
    assert cli_json(engine, "contacts", "count")["marketing_consent"] == 0


def test_user_mistakes_are_one_line_and_a_nonzero_exit(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    cases = [
        (["contacts", "show", "12345"], "号码位数太少"),
        (["contacts", "show", "13800138000"], "不存在"),
        (["contacts", "import", str(tmp_path / "missing.csv")], "找不到文件"),
        (["suppress", "add", "13800138000", "--kind", "spam"], "屏蔽类型"),
        (["--workspace", "nope", "contacts", "count"], "工作区 'nope' 不存在"),
    ]
    for args, expected in cases:
        code, out, err = cli(engine, *args)
        assert code == 1, args
        assert expected in err and "Traceback" not in err + out
        assert len(err.strip().splitlines()) == 1, err


def test_no_database_yet_says_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "x.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "echelon",
            "--database-url",
            f"sqlite:///{missing}",
            "contacts",
            "count",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "echelon init" in result.stderr and "Traceback" not in result.stderr


def test_changes_made_from_the_cli_are_audited(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    """Consent, suppression, approvals and exports leave the same audit lines as the API,
    with the CLI's actor; ``echelon audit`` reads them back, newest first."""
    phone = "13800138000"
    cli_json(engine, "consent", "grant", phone, "--source", "store", "--proof", "form-1")
    cli_json(engine, "consent", "grant", phone, "--source", "store")  # no change: no line
    cli_json(engine, "suppress", "add", phone, "--kind", "blacklist", "--reason", "投诉")
    cli_json(engine, "suppress", "remove", phone, "--kind", "blacklist")
    cli_json(engine, "consent", "revoke", phone)
    cli_json(engine, "workspace", "set", "--signature", "星河商城")
    cli_json(engine, "templates", "create", "双11", "--body", "双11预售开启")
    cli_json(engine, "templates", "submit", "双11", "--by", "小美")
    cli_json(engine, "templates", "approve", "双11", "--by", "合规老李")
    cli_json(engine, "contacts", "export", str(tmp_path / "all.csv"))
    entries = cli_json(engine, "audit")
    assert [(e["action"], e["target"]) for e in reversed(entries)] == [
        ("consent.grant", f"phone:{phone}"),
        ("suppression.add", f"phone:{phone}"),
        ("suppression.remove", f"phone:{phone}"),
        ("consent.revoke", f"phone:{phone}"),
        ("template.approve", "template:双11"),
        ("export", "contacts"),
    ]
    assert all(e["actor"].startswith("cli:") for e in entries)
    assert entries[1]["actor"] == "cli:合规老李"
    assert entries[-1]["detail"] == {"purpose": "marketing", "source": "store", "proof": "form-1"}
    only = cli_json(engine, "audit", "--action", "export")
    assert [e["action"] for e in only] == ["export"]
