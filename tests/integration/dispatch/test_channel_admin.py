"""Channel administration on both databases, through the service and the CLI; a bind
test against a real simulator; the password never printed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from echelon.channels.simulator import SimulatorProcess, free_port
from echelon.channels.smpp import SmppConfig
from echelon.cli.app import app
from echelon.db.outbox import channels
from echelon.dispatch.channel_admin import (
    MASK,
    AccountInUse,
    ChannelExists,
    ChannelNotFound,
    add_channel,
    channel_connection,
    disable_channel,
    edit_channel,
    enable_channel,
    get_channel,
    list_channels,
    smpp_config,
)
from echelon.errors import InvalidInput
from echelon.workspaces.service import Workspace, create_workspace

SECRET = "Zq7#wX2k"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
runner = CliRunner()


def cli(engine: Engine, *args: str) -> tuple[int, str, str]:
    url = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(app, ["--database-url", url, *args])
    assert SECRET not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def cli_json(engine: Engine, *args: str) -> object:
    code, out, err = cli(engine, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def config(port: int = 2775, **changes: object) -> SmppConfig:
    fields = {"host": "127.0.0.1", "port": port, "system_id": "shop", "password": SECRET}
    return smpp_config(fields | changes)


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as sim:
        yield sim


def test_service_add_edit_disable(engine: Engine, workspace: Workspace) -> None:
    ws = workspace.id
    added = add_channel(
        engine, workspace_id=ws, name="cmpp-a", config=config(), carriers=["china_unicom",
        "china_mobile"], weight=3, priority=1, binds=2, now=NOW,
    )  # fmt: skip
    assert added.carriers == ("china_mobile", "china_unicom")
    assert (added.weight, added.priority, added.binds, added.enabled) == (3, 1, 2, True)
    assert added.config["password"] == MASK and SECRET not in repr(added)
    assert SECRET not in json.dumps(added.to_json(), default=str)
    with engine.connect() as conn:
        stored = conn.execute(select(channels.c.config)).scalar_one()
    assert stored["password"] == SECRET  # kept for binding

    later = NOW + timedelta(minutes=1)
    edited = edit_channel(
        engine, workspace_id=ws, name="cmpp-a", now=later, port=2776, carriers=["all"], tps=50
    )
    assert (edited.config["port"], edited.carriers, edited.config["tps"]) == (2776, ("all",), 50)
    assert edited.binds == 2 and edited.updated_at == later and edited.created_at == NOW
    connection = channel_connection(engine, workspace_id=ws, name="cmpp-a")
    assert connection.password.get_secret_value() == SECRET and connection.name == "cmpp-a"

    add_channel(
        engine, workspace_id=ws, name="backup", config=config(), carriers=["all"],
        weight=1, priority=0, now=NOW,
    )  # fmt: skip
    assert [c.name for c in list_channels(engine, workspace_id=ws)] == ["backup", "cmpp-a"]
    assert not disable_channel(engine, workspace_id=ws, name="backup", now=later).enabled
    assert not get_channel(engine, workspace_id=ws, name="backup").enabled
    assert enable_channel(engine, workspace_id=ws, name="backup", now=later).enabled


def test_service_refuses_bad_input(engine: Engine, workspace: Workspace) -> None:
    ws = workspace.id
    add_channel(
        engine, workspace_id=ws, name="a", config=config(), carriers=["all"], weight=1,
        priority=0, now=NOW,
    )  # fmt: skip
    with pytest.raises(ChannelExists, match="已存在"):
        add_channel(
            engine, workspace_id=ws, name="a", config=config(), carriers=["all"], weight=1,
            priority=0, now=NOW,
        )  # fmt: skip
    with pytest.raises(ChannelNotFound, match="「b」不存在"):
        edit_channel(engine, workspace_id=ws, name="b", now=NOW, port=1)
    with pytest.raises(InvalidInput, match="运营商「china_nope」无效"):
        edit_channel(engine, workspace_id=ws, name="a", now=NOW, carriers=["china_nope"])
    with pytest.raises(InvalidInput, match="端口 0 无效"):
        edit_channel(engine, workspace_id=ws, name="a", now=NOW, port=0)
    with pytest.raises(InvalidInput, match="权重 0 无效"):
        edit_channel(engine, workspace_id=ws, name="a", now=NOW, weight=0)
    with pytest.raises(InvalidInput, match="端口 70000 无效"):
        config(port=70000)
    with pytest.raises(InvalidInput, match=r"^密码无效") as refused:
        config(password="far-too-long-secret")
    assert "far-too-long" not in refused.value.message
    assert get_channel(engine, workspace_id=ws, name="a").config["port"] == 2775


def test_cli_add_edit_list_show_disable(engine: Engine, workspace: Workspace) -> None:
    added = cli_json(
        engine, "channels", "add", "main", "--host", "10.0.0.5", "--port", "7890",
        "--system-id", "shop", "--password", SECRET, "--system-type", "cmpp",
        "--bind", "transmitter", "--binds", "2", "--tps", "200", "--window", "64",
        "--carriers", "china_mobile,china_telecom", "--weight", "5", "--priority", "1",
    )  # fmt: skip
    assert added == cli_json(engine, "channels", "show", "main")
    assert isinstance(added, dict)
    assert added["config"]["password"] == MASK
    assert (added["config"]["bind_mode"], added["binds"], added["config"]["tps"]) == (
        "transmitter", 2, 200
    )  # fmt: skip
    assert added["carriers"] == ["china_mobile", "china_telecom"]
    edited = cli_json(engine, "channels", "edit", "main", "--port", "7891", "--password", "n3w")
    assert isinstance(edited, dict) and edited["config"]["port"] == 7891
    assert edited["config"]["system_type"] == "cmpp"  # untouched settings stay

    code, out, _ = cli(engine, "channels", "show", "main")
    assert code == 0 and "10.0.0.5:7891" in out and MASK in out
    code, out, _ = cli(engine, "channels", "list")
    assert code == 0 and "main" in out
    code, out, _ = cli(engine, "channels", "disable", "main")
    assert code == 0 and "已停用" in out
    listed = cli_json(engine, "channels", "list")
    assert isinstance(listed, list) and [c["enabled"] for c in listed] == [False]
    code, out, _ = cli(engine, "channels", "enable", "main")
    assert code == 0 and "已启用" in out


def test_two_enabled_channels_may_not_bind_to_one_smsc_account(
    engine: Engine, workspace: Workspace
) -> None:
    ws = workspace.id

    def add(name: str, workspace_id: int = ws, **changes: object) -> None:
        add_channel(
            engine, workspace_id=workspace_id, name=name, config=config(**changes),
            carriers=["all"], weight=1, priority=0, now=NOW,
        )  # fmt: skip

    add("主通道")
    in_use = r"通道「主通道」已使用短信中心账号 shop@127\.0\.0\.1:2775"
    with pytest.raises(AccountInUse, match=in_use):
        add("副通道", host="127.0.0.1")
    add("网关", host="SMSC.example.cn", system_id="gw")
    with pytest.raises(AccountInUse, match=r"「网关」.*--binds"):
        add("网关二", host="smsc.example.cn", system_id="gw")  # host names ignore case
    add("副通道", system_id="shop2")  # another account on the same SMSC
    add("备用", port=2776)
    with pytest.raises(AccountInUse, match="「主通道」"):
        edit_channel(engine, workspace_id=ws, name="副通道", now=NOW, system_id="shop")
    assert get_channel(engine, workspace_id=ws, name="副通道").config["system_id"] == "shop2"

    # A disabled channel binds nothing: its account is free until it is enabled again.
    disable_channel(engine, workspace_id=ws, name="备用", now=NOW)
    edit_channel(engine, workspace_id=ws, name="备用", now=NOW, port=2775, system_id="shop2")
    with pytest.raises(AccountInUse, match="「副通道」"):
        enable_channel(engine, workspace_id=ws, name="备用", now=NOW)
    assert not get_channel(engine, workspace_id=ws, name="备用").enabled

    # Another workspace's channel is refused too, without its name being shown.
    other, _ = create_workspace(engine, slug="other-shop", name="另一家店")
    with pytest.raises(AccountInUse, match=r"^另一个工作区的通道已使用"):
        add("主通道", workspace_id=other.id)
    code, _, err = cli(
        engine, "channels", "add", "第四", "--host", "127.0.0.1", "--port", "2775",
        "--system-id", "shop", "--password", SECRET,
    )  # fmt: skip
    assert code == 1 and "已使用短信中心账号" in err and len(err.strip().splitlines()) == 1


def test_cli_errors_are_one_line(engine: Engine, workspace: Workspace) -> None:
    code, _, err = cli(
        engine, "channels", "add", "x", "--host", "h", "--port", "70000", "--system-id", "s",
        "--password", SECRET,
    )  # fmt: skip
    assert code == 1 and "端口 70000 无效" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(engine, "channels", "show", "missing")
    assert code == 1 and "「missing」不存在" in err
    code, _, err = cli(
        engine, "channels", "add", "x", "--host", "h", "--system-id", "s", "--password", SECRET,
        "--carriers", "all,china_mobile",
    )  # fmt: skip
    assert code == 1 and "all 不能与具体运营商同时给出" in err


def test_channels_test_binds_to_the_simulator(
    engine: Engine, workspace: Workspace, simulator: SimulatorProcess
) -> None:
    cli_json(
        engine, "channels", "add", "sim", "--host", simulator.host,
        "--port", str(simulator.port), "--system-id", "shop", "--password", SECRET,
    )  # fmt: skip
    report = cli_json(engine, "channels", "test", "sim", "--timeout", "5")
    assert isinstance(report, dict)
    assert report["bound"] is True and report["bind_ms"] >= 0
    assert report["health"]["state"] == "bound" and report["health"]["bind_mode"] == "transceiver"
    code, out, _ = cli(engine, "channels", "test", "sim")
    assert code == 0 and "已绑定" in out and "× 1" in out
    # Every session of a channel with several binds is bound once.
    cli_json(engine, "channels", "edit", "sim", "--binds", "3")
    report = cli_json(engine, "channels", "test", "sim")
    assert isinstance(report, dict) and report["binds"] == 3
    assert report["health"]["counters"]["binds_bound"] == 3


def test_channels_test_reports_a_closed_port(engine: Engine, workspace: Workspace) -> None:
    port = free_port()
    add_channel(
        engine, workspace_id=workspace.id, name="down", config=config(port), carriers=["all"],
        weight=1, priority=0, now=NOW,
    )  # fmt: skip
    code, out, err = cli(engine, "channels", "test", "down", "--timeout", "2", "--json")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and f"127.0.0.1:{port}" in err and "无法绑定" in err


def test_simulator_command_serves_until_terminated() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "echelon", "simulator", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"READY 127.0.0.1 {port}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert process.stdout.readline().startswith("STATS ")
    finally:
        process.kill()
        process.wait()
