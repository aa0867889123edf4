"""``echelon serve`` as a user runs it — API and dispatcher in one process, a message
sent over HTTP reaching the SMSC simulator — and ``echelon users|keys``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
from api_support import NOW
from sqlalchemy import Engine
from typer.testing import CliRunner

from echelon.access.service import create_key
from echelon.channels.simulator import LogNormalDelay, SimulatorConfig, SimulatorProcess, free_port
from echelon.cli.app import app
from echelon.compliance.policy import save_settings
from echelon.dispatch.channel_admin import add_channel, smpp_config
from echelon.workspaces.service import Workspace, update_settings

runner = CliRunner()


def _cli(engine: Engine, *args: str, env: dict[str, str] | None = None) -> Any:
    url = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(app, ["--database-url", url, *args, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_users_and_keys_from_the_command_line(engine: Engine, workspace: Workspace) -> None:
    added = _cli(
        engine, "users", "add", "Ops@Example.com", "--role", "marketer",
        env={"ECHELON_NEW_PASSWORD": "correct horse battery"},
    )  # fmt: skip
    assert added["email"] == "ops@example.com" and added["role"] == "marketer"
    assert [u["email"] for u in _cli(engine, "users", "list")] == ["ops@example.com"]
    created = _cli(
        engine, "keys", "create", "orders", "--scope", "messages:send", "--scope", "contacts:write",
        "--rate", "120",
    )  # fmt: skip
    assert created["secret"].startswith("ek_")
    assert created["scopes"] == ["contacts:write", "messages:send"]
    listed = _cli(engine, "keys", "list")
    assert created["secret"] not in json.dumps(listed) and listed[0]["rate_per_minute"] == 120
    revoked = _cli(engine, "keys", "revoke", str(created["id"]))
    assert revoked["revoked_at"] is not None
    url = engine.url.render_as_string(hide_password=False)
    refused = runner.invoke(
        app, ["--database-url", url, "keys", "create", "x", "--scope", "templates:approve"]
    )
    assert refused.exit_code == 1 and "templates:approve" in refused.stderr


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_answers_the_api_and_sends_what_it_queues(
    engine: Engine, workspace: Workspace, tmp_path: Any
) -> None:
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    with engine.begin() as conn:  # whatever the hour: no quiet window
        save_settings(conn, workspace.id, {"quiet_start": "00:00", "quiet_end": "00:00"})
    secret = create_key(
        engine, workspace_id=workspace.id, name="orders", scopes=["messages:send", "messages:read"],
        rate_per_minute=None, created_by="test", holder=None, now=NOW,
    ).secret  # fmt: skip
    fast = LogNormalDelay(median_ms=5, p95_ms=20)
    config = SimulatorConfig(
        seed=7, delivery_success_ratio=1.0, receipt_delay=fast, reply_delay=fast
    )
    with SimulatorProcess(config) as sim:
        add_channel(
            engine, workspace_id=workspace.id, name="sim",
            config=smpp_config({
                "host": sim.host, "port": sim.port, "system_id": "echelon", "password": "secret",
            }),
            carriers=["all"], weight=1, priority=0, now=NOW,
        )  # fmt: skip
        port = free_port()
        url = engine.url.render_as_string(hide_password=False)
        server = subprocess.Popen(
            [sys.executable, "-m", "echelon", "--database-url", url, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=os.environ | {"ECHELON_API_COOKIE_SECURE": "false"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def up() -> bool:
                try:
                    return httpx.get(f"{base}/api/v1/openapi.json").status_code == 200
                except httpx.TransportError:
                    return False

            _wait(up, 60, "the server to answer")
            headers = {"Authorization": f"Bearer {secret}"}
            sent = httpx.post(
                f"{base}/api/v1/messages",
                json={
                    "phone": "13800138000",
                    "body": "您的验证码是 123456",
                    "kind": "verification",
                },
                headers=headers,
            )
            assert sent.status_code == 202, sent.text
            message = f"{base}/api/v1/messages/{sent.json()['id']}"
            status = _wait(
                lambda: (
                    (s := httpx.get(message, headers=headers).json()["status"]) == "delivered" and s
                ),
                60,
                "the dispatcher in the same process to deliver the message",
            )
            assert status == "delivered"
            assert httpx.get(f"{base}/api/v1/nope").json()["error"]["code"] == "not_found"
        finally:
            server.send_signal(signal.SIGINT)
            output = server.communicate(timeout=30)[0].decode()
        # Uvicorn shuts down cleanly, then leaves by the signal it was sent (130).
        assert server.returncode in (0, 130), output
        assert "Application shutdown complete" in output and "Traceback" not in output
        assert sim.stop().accepted >= 1
