"""Helpers for the API tests: an app over the test database, clients holding a key or
a signed-in session, and a shop worth of data to aim requests at."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from echelon.access.models import PERMISSIONS
from echelon.access.service import create_key, create_user
from echelon.access.settings import AccessSettings
from echelon.api.app import create_app
from echelon.audience.consent import grant_consent
from echelon.campaigns.service import create_campaign
from echelon.channels.smpp import SmppConfig
from echelon.config import Settings
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.dispatch.channel_admin import add_channel
from echelon.workspaces.service import Workspace, create_workspace, update_settings

NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
# Generous: tests that are not about rate limits never meet one.
UNLIMITED = AccessSettings(rate_per_minute=1_000_000, burst=1_000_000)


@contextmanager
def api_client(engine: Engine, access: AccessSettings = UNLIMITED) -> Iterator[TestClient]:
    app = create_app(engine, Settings(), access=access)
    # https: the session cookie is Secure, and a client sends it over HTTPS only.
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield client


def key(engine: Engine, workspace_id: int, *scopes: str, rate: int | None = None) -> str:
    """A key's secret, made as ``echelon keys create`` does (any scopes)."""
    chosen = scopes or tuple(
        p
        for p in PERMISSIONS
        if p not in {"templates:approve", "keys:manage", "users:manage", "channels:admin"}
    )
    return create_key(
        engine,
        workspace_id=workspace_id,
        name=f"test-{len(chosen)}",
        scopes=chosen,
        rate_per_minute=rate,
        created_by="cli",
        holder=None,
        now=NOW,
    ).secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def user(engine: Engine, workspace_id: int, email: str, role: str) -> str:
    create_user(
        engine,
        workspace_id=workspace_id,
        email=email,
        name=email.split("@")[0],
        role=role,
        password=PASSWORD,
        now=NOW,
    )
    return email


def sign_in(client: TestClient, workspace: str, email: str) -> dict[str, str]:
    """Sign ``client`` in (its cookie jar keeps the session); the CSRF header to send."""
    answer = client.post(
        "/api/v1/session", json={"workspace": workspace, "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return {"X-CSRF-Token": answer.json()["csrf_token"]}


def assert_error(answer: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert set(error) <= {"code", "message", "field"}
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def shop(engine: Engine, slug: str, phone: str = "13800138000") -> Workspace:
    """A signed workspace with a consenting contact, an approved template ``t``, a draft
    campaign ``c`` and a channel ``ch``."""
    workspace, _ = create_workspace(engine, slug=slug, name=slug)
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    grant_consent(
        engine, workspace_id=workspace.id, phone=phone, purpose="marketing",
        source="checkout", proof=None, now=NOW,
    )  # fmt: skip
    create_template(
        engine, workspace_id=workspace.id, name="t", kind="marketing", body="会员日全场8折",
        actor="运营", now=NOW,
    )  # fmt: skip
    submit_template(engine, workspace_id=workspace.id, name="t", actor="运营", now=NOW)
    approve_template(engine, workspace_id=workspace.id, name="t", actor="审核", now=NOW)
    create_campaign(
        engine, workspace_id=workspace.id, name="c", template="t", audience={"kind": "all"},
        send_at=None, ends_at=None, throttle_per_second=None, budget_yuan=None, now=NOW,
    )  # fmt: skip
    add_channel(
        engine, workspace_id=workspace.id, name="ch",
        config=SmppConfig(host="127.0.0.1", port=2775, system_id="shop", password=SecretStr("pw")),
        carriers=["all"], weight=1, priority=0, now=NOW,
    )  # fmt: skip
    return workspace
