"""The console over each database through the HTTP app: sign-in, every page with data
in it, roles, CSRF, and one workspace never seeing another's records."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from echelon.access.service import create_user
from echelon.access.settings import AccessSettings
from echelon.api.app import create_app
from echelon.audience.records import upsert_contacts
from echelon.campaigns.service import create_campaign
from echelon.channels.base import InboundReply
from echelon.config import Settings
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.dispatch.inbound import record_reply
from echelon.journeys.service import create_from_builtin
from echelon.segments.service import create_segment
from echelon.workspaces.service import Workspace, create_workspace, update_settings

NOW = datetime.now(UTC)
PASSWORD = "correct horse battery"
ACCESS = AccessSettings(rate_per_minute=1_000_000, burst=1_000_000)


def _shop(engine: Engine, slug: str) -> Workspace:
    workspace, _ = create_workspace(engine, slug=slug, name=f"{slug} 商城")
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    for email, role in (("boss@example.com", "owner"), ("rui@example.com", "reviewer")):
        create_user(
            engine,
            workspace_id=workspace.id,
            email=email,
            name=email.split("@")[0],
            role=role,
            password=PASSWORD,
            now=NOW,
        )
    upsert_contacts(
        engine,
        workspace_id=workspace.id,
        records=[
            {"phone": "13800138000", "name": "张三", "tags": ["vip"], "consent": True},
            {"phone": "18612345678", "name": "李四", "consent": True},
        ],
        consent_source="store_signup",
        list_name=None,
        now=NOW,
    )
    create_segment(
        engine,
        workspace_id=workspace.id,
        name="VIP",
        definition={"kind": "tag", "tags": ["vip"]},
        now=NOW,
    )
    create_template(
        engine,
        workspace_id=workspace.id,
        name="双11",
        kind="marketing",
        body="{{ name }}您好，双11预售开启",
        actor="mei",
        now=NOW,
    )
    submit_template(engine, workspace_id=workspace.id, name="双11", actor="mei", now=NOW)
    approve_template(engine, workspace_id=workspace.id, name="双11", actor="rui", now=NOW)
    create_campaign(
        engine,
        workspace_id=workspace.id,
        name="双11预热",
        template="双11",
        audience={"kind": "segment", "segment": "VIP"},
        send_at=None,
        ends_at=None,
        throttle_per_second=None,
        budget_yuan=None,
        now=NOW,
    )
    create_from_builtin(
        engine, workspace_id=workspace.id, key="cart_abandonment", actor="mei", now=NOW
    )
    record_reply(
        engine,
        workspace_id=workspace.id,
        channel_id=None,
        reply=InboundReply("+8613800138000", "1069", "", f"{slug} 退订", NOW),
        now=NOW,
        keywords=None,
    )
    return workspace


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    _shop(engine, "store")
    _shop(engine, "other")
    app = create_app(engine, Settings(), access=ACCESS)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def _sign_in(client: TestClient, email: str, workspace: str = "store") -> str:
    answer = client.post(
        "/login",
        data={"workspace": workspace, "email": email, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/settings")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_signing_in_and_out(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    wrong = client.post(
        "/login",
        data={"workspace": "store", "email": "boss@example.com", "password": "nope-nope-nope"},
    )
    assert wrong.status_code == 401
    assert "工作区、邮箱或密码不正确" in wrong.text
    csrf = _sign_in(client, "boss@example.com")
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code
    assert client.get("/", follow_redirects=False).status_code == 303


PAGES = (
    "/",
    "/contacts",
    "/contacts?q=张",
    "/contacts/view?phone=13800138000",
    "/contacts/import",
    "/segments",
    "/segments/new",
    "/segments/view?id=1",
    "/segments/edit?id=1",
    "/templates",
    "/templates/new",
    "/templates/view?name=双11",
    "/review",
    "/campaigns",
    "/campaigns/new",
    "/campaigns/view?name=双11预热",
    "/campaigns/report?name=双11预热",
    "/journeys",
    "/journeys/view?name=购物车挽回",
    "/inbox",
    "/inbox?opt_outs=1",
    *(
        f"/settings?tab={tab}"
        for tab in ("channels", "sending", "content", "thresholds", "users", "keys", "webhooks")
    ),
)


def test_every_page_renders_for_the_owner(client: TestClient) -> None:
    _sign_in(client, "boss@example.com")
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[-2000:])
        assert '<html lang="zh-CN">' in answer.text, path


def test_the_campaign_preview_shows_who_is_blocked_and_why(client: TestClient) -> None:
    _sign_in(client, "boss@example.com")
    page = client.get("/campaigns/view", params={"name": "双11预热"}).text
    # The only VIP replied 退订: the preview counts them out, with the reason.
    assert re.search(r'id="preview-audience">1<', page)
    assert re.search(r'id="preview-planned">0<', page)
    assert "已退订" in page


def test_the_inbox_shows_only_this_workspaces_replies_with_opt_outs_marked(
    client: TestClient,
) -> None:
    _sign_in(client, "boss@example.com")
    page = client.get("/inbox").text
    assert "store 退订" in page and "other 退订" not in page
    assert "badge red" in page


def test_a_reviewer_approves_but_reads_no_contacts(client: TestClient) -> None:
    csrf = _sign_in(client, "rui@example.com")
    assert client.get("/", follow_redirects=False).headers["location"] == "/review"
    refused = client.get("/contacts")
    assert refused.status_code == 403
    assert "没有权限" in refused.text
    # The template was approved by "rui" already: a second approval is not possible.
    again = client.post("/templates/approve", data={"csrf_token": csrf, "name": "双11"})
    assert again.status_code == 409


def test_a_post_without_the_csrf_token_is_refused(client: TestClient) -> None:
    _sign_in(client, "boss@example.com")
    answer = client.post(
        "/settings/users/add",
        data={"email": "x@example.com", "name": "x", "role": "owner", "password": "x" * 12},
    )
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert "x@example.com" not in client.get("/settings?tab=users").text


def test_an_htmx_error_goes_to_the_flash_area(client: TestClient) -> None:
    csrf = _sign_in(client, "boss@example.com")
    answer = client.post(
        "/segments/count",
        data={"csrf_token": csrf, "mode": "json", "definition": '{"kind": "age"}'},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert "segment-count-error" in answer.text


def test_a_malformed_builder_action_removes_nothing(client: TestClient) -> None:
    csrf = _sign_in(client, "boss@example.com")
    for action in ("remove:x", "remove:", "remove:99"):
        answer = client.post(
            "/segments/builder",
            data={"csrf_token": csrf, "combinator": "and", "action": action},
            headers={"HX-Request": "true"},
        )
        assert answer.status_code == 200, (action, answer.text[-500:])


def test_another_workspaces_contact_is_not_found(client: TestClient, engine: Engine) -> None:
    _sign_in(client, "boss@example.com", workspace="other")
    upsert_contacts(
        engine,
        workspace_id=1,
        records=[{"phone": "13900139000", "name": "只在 store"}],
        consent_source=None,
        list_name=None,
        now=NOW,
    )
    answer = client.get("/contacts/view", params={"phone": "13900139000"})
    assert answer.status_code == 404
    assert "只在 store" not in client.get("/contacts").text


def test_the_wizard_sets_up_an_ab_test_and_the_campaign_shows_it(client: TestClient) -> None:
    csrf = _sign_in(client, "boss@example.com")
    form = {
        "csrf_token": csrf, "name": "双11 A/B", "audience": "consenting", "template": "双11",
        "ab_template": "双11", "ab_mode": "test", "ab_test_share": "50", "ab_window": "2",
        "ab_holdout": "10", "ab_metric": "conversion_rate",
    }  # fmt: skip
    created = client.post("/campaigns/create", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text[-2000:]
    page = client.get("/campaigns/view", params={"name": "双11 A/B"}).text
    assert 'id="experiment"' in page and "转化率" in page
    assert [cell.strip() for cell in re.findall(r"<tr><td>([AB])</td>", page)] == ["A", "B"]
    bad = client.post("/campaigns/create", data=form | {"name": "坏", "ab_window": "两小时"})
    assert bad.status_code == 200 and "测试窗口「两小时」应为数字" in bad.text
