"""The console over each database through the HTTP app: sign-in, every page with data
in it, roles, CSRF, and one workspace never seeing another's records."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from console_support import ACCESS, add_staff, sign_in
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from echelon.access.models import AuditEntry
from echelon.access.service import list_audit
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


def _shop(engine: Engine, slug: str) -> Workspace:
    workspace, _ = create_workspace(engine, slug=slug, name=f"{slug} 商城")
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    add_staff(engine, workspace.id, NOW)
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


def test_signing_in_and_out(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    wrong = client.post(
        "/login",
        data={"workspace": "store", "email": "boss@example.com", "password": "nope-nope-nope"},
    )
    assert wrong.status_code == 401
    assert "工作区、邮箱或密码不正确" in wrong.text
    csrf = sign_in(client, "boss@example.com")
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
    sign_in(client, "boss@example.com")
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[-2000:])
        assert '<html lang="zh-CN">' in answer.text, path


def test_the_campaign_preview_shows_who_is_blocked_and_why(client: TestClient) -> None:
    sign_in(client, "boss@example.com")
    page = client.get("/campaigns/view", params={"name": "双11预热"}).text
    # The only VIP replied 退订: the preview counts them out, with the reason.
    assert re.search(r'id="preview-audience">1<', page)
    assert re.search(r'id="preview-planned">0<', page)
    assert "已退订" in page


def test_the_inbox_shows_only_this_workspaces_replies_with_opt_outs_marked(
    client: TestClient,
) -> None:
    sign_in(client, "boss@example.com")
    page = client.get("/inbox").text
    assert "store 退订" in page and "other 退订" not in page
    assert "badge red" in page


def test_a_reviewer_approves_but_reads_no_contacts(client: TestClient) -> None:
    csrf = sign_in(client, "rui@example.com")
    assert client.get("/", follow_redirects=False).headers["location"] == "/review"
    refused = client.get("/contacts")
    assert refused.status_code == 403
    assert "没有权限" in refused.text
    # The template was approved by "rui" already: a second approval is not possible.
    again = client.post("/templates/approve", data={"csrf_token": csrf, "name": "双11"})
    assert again.status_code == 409


def test_a_post_without_the_csrf_token_is_refused(client: TestClient) -> None:
    sign_in(client, "boss@example.com")
    answer = client.post(
        "/settings/users/add",
        data={"email": "x@example.com", "name": "x", "role": "owner", "password": "x" * 12},
    )
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert "x@example.com" not in client.get("/settings?tab=users").text


def test_an_htmx_error_goes_to_the_flash_area(client: TestClient) -> None:
    csrf = sign_in(client, "boss@example.com")
    answer = client.post(
        "/segments/count",
        data={"csrf_token": csrf, "mode": "json", "definition": '{"kind": "age"}'},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert "segment-count-error" in answer.text


def test_a_malformed_builder_action_removes_nothing(client: TestClient) -> None:
    csrf = sign_in(client, "boss@example.com")
    for action in ("remove:x", "remove:", "remove:99"):
        answer = client.post(
            "/segments/builder",
            data={"csrf_token": csrf, "combinator": "and", "action": action},
            headers={"HX-Request": "true"},
        )
        assert answer.status_code == 200, (action, answer.text[-500:])


def test_another_workspaces_contact_is_not_found(client: TestClient, engine: Engine) -> None:
    sign_in(client, "boss@example.com", workspace="other")
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
    csrf = sign_in(client, "boss@example.com")
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


# -- compliance work on a contact's profile -----------------------------------------------

LI = "+8618612345678"  # 李四: live marketing consent, no suppression
STORE = 1  # the first workspace the fixture makes


def _profile(client: TestClient, phone: str = LI) -> str:
    answer = client.get("/contacts/view", params={"phone": phone})
    assert answer.status_code == 200, answer.text[-2000:]
    return answer.text


def _entries(engine: Engine, action: str, workspace_id: int = STORE) -> list[AuditEntry]:
    """The audit lines of ``action`` a person wrote (the fixture's opt-out reply writes
    its own, as ``reply``)."""
    found = list_audit(engine, workspace_id=workspace_id, action=action)
    return [entry for entry in found if entry.actor != "reply"]


def _audit(engine: Engine, action: str, workspace_id: int = STORE) -> list[tuple[str, str]]:
    return [(entry.actor, entry.target or "") for entry in _entries(engine, action, workspace_id)]


def _consent_rows(page: str) -> list[str]:
    table = page.split(">同意记录<", 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr><td>营销</td>.*?</tr>", table, flags=re.S)


def test_a_marketer_withdraws_and_grants_marketing_consent(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    page = _profile(client)
    assert "营销同意有效" in page and 'id="consent-grant"' not in page
    assert "store_signup" in _consent_rows(page)[0]

    withdrawn = client.post(
        "/contacts/consent/withdraw",
        data={"csrf_token": csrf, "phone": "18612345678", "source": "客服来电"},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303, withdrawn.text[-2000:]
    assert withdrawn.headers["location"].endswith("done=consent_withdrawn")
    page = _profile(client) + client.get(withdrawn.headers["location"]).text
    assert "营销同意已撤回，立即生效。" in page
    assert "客服来电" in _consent_rows(page)[0] and 'id="consent-grant"' in page
    assert [target for _, target in _audit(engine, "consent.revoke")] == [f"contact:{LI}"]

    # Consent is never assumed: no source, no grant — said on the page, nothing stored.
    refused = client.post(
        "/contacts/consent/grant",
        data={"csrf_token": csrf, "phone": LI, "source": "  ", "proof": "x"},
    )
    assert refused.status_code == 422
    assert "请写明同意来源" in refused.text and 'id="problem"' in refused.text
    too_long = client.post(
        "/contacts/consent/grant",
        data={"csrf_token": csrf, "phone": LI, "source": "web_form", "proof": "x" * 501},
    )
    assert too_long.status_code == 422 and "最多 500 个字符" in too_long.text
    assert len(_consent_rows(_profile(client))) == 1
    assert _audit(engine, "consent.grant") == []

    granted = client.post(
        "/contacts/consent/grant",
        data={"csrf_token": csrf, "phone": LI, "source": "web_form", "proof": "表单 #42"},
    )
    assert granted.status_code == 200
    assert "已记录营销同意。" in granted.text
    assert "营销同意有效" in granted.text and 'id="consent-grant"' not in granted.text
    rows = _consent_rows(granted.text)
    assert len(rows) == 2 and "表单 #42" in rows[1] and "badge red" not in rows[1]
    [(actor, target)] = _audit(engine, "consent.grant")
    assert "mei" in actor and target == f"contact:{LI}"

    again = client.post(
        "/contacts/consent/grant", data={"csrf_token": csrf, "phone": LI, "source": "store"}
    )
    assert "已有有效的营销同意，未重复记录。" in again.text
    assert len(_audit(engine, "consent.grant")) == 1


def test_a_marketer_adds_and_removes_a_suppression(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "mei@example.com")
    assert "这个号码不在任何屏蔽名单中。" in _profile(client)

    added = client.post(
        "/contacts/suppress",
        data={"csrf_token": csrf, "phone": LI, "kind": "blacklist", "reason": "多次投诉"},
    )
    assert added.status_code == 200 and "已加入屏蔽名单，立即生效。" in added.text
    listed = added.text.split('id="suppression-list"', 1)[1].split("</table>", 1)[0]
    assert '<span class="badge red">黑名单</span>' in listed
    [entry] = _entries(engine, "suppression.add")
    assert entry.target == f"phone:{LI}" and entry.detail["kind"] == "blacklist"
    assert entry.detail["reason"] == "多次投诉"

    twice = client.post(
        "/contacts/suppress", data={"csrf_token": csrf, "phone": LI, "kind": "blacklist"}
    )
    assert "已在该屏蔽名单中，未改变" in twice.text
    assert len(_audit(engine, "suppression.add")) == 1
    by_hand = client.post(
        "/contacts/suppress", data={"csrf_token": csrf, "phone": LI, "kind": "invalid"}
    )
    assert by_hand.status_code == 422 and "只能手动加入退订、黑名单或免打扰名单" in by_hand.text

    removed = client.post(
        "/contacts/unsuppress", data={"csrf_token": csrf, "phone": LI, "kind": "blacklist"}
    )
    assert removed.status_code == 200 and "已移出屏蔽名单。" in removed.text
    assert "这个号码不在任何屏蔽名单中。" in removed.text
    assert _audit(engine, "suppression.remove")[0][1] == f"phone:{LI}"
    gone = client.post(
        "/contacts/unsuppress", data={"csrf_token": csrf, "phone": LI, "kind": "blacklist"}
    )
    assert gone.status_code == 422 and "不在黑名单（投诉）中" in gone.text
    assert len(_audit(engine, "suppression.remove")) == 1

    # 张三 opted out by reply: removing that asks a stronger question first.
    assert "曾要求退订" in _profile(client, "13800138000")


def test_a_marketer_erases_a_contact_on_request(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "mei@example.com")
    client.post("/contacts/suppress", data={"csrf_token": csrf, "phone": LI, "kind": "dnc"})
    page = _profile(client)
    assert f'data-confirm="将永久删除 {LI} 的全部个人数据' in page

    erased = client.post(
        "/contacts/erase", data={"csrf_token": csrf, "phone": LI}, follow_redirects=False
    )
    assert erased.status_code == 303 and erased.headers["location"] == "/contacts?done=erased"
    listing = client.get(erased.headers["location"]).text
    assert "个人数据已抹除" in listing and "李四" not in listing
    assert client.get("/contacts/view", params={"phone": LI}).status_code == 404
    [entry] = _entries(engine, "contact.erase")
    assert entry.target == f"contact:{LI}" and entry.detail["contacts"] == 1
    assert entry.detail["suppressions_kept"] == 1
    again = client.post("/contacts/erase", data={"csrf_token": csrf, "phone": LI})
    assert again.status_code == 404 and "不存在" in again.text

    # The other workspace's 李四 is a different person and stays.
    sign_in(client, "boss@example.com", workspace="other")
    assert "营销同意有效" in _profile(client)


ACTIONS = (
    ("/contacts/consent/grant", {"source": "web_form"}),
    ("/contacts/consent/withdraw", {}),
    ("/contacts/suppress", {"kind": "dnc", "reason": "x"}),
    ("/contacts/unsuppress", {"kind": "opt_out"}),
    ("/contacts/erase", {}),
)
CHANGES = ("consent.grant", "consent.revoke", "suppression.add", "suppression.remove")


def _unchanged(client: TestClient, engine: Engine) -> None:
    for action in (*CHANGES, "contact.erase"):
        assert _audit(engine, action) == [], action
    sign_in(client, "boss@example.com")
    page = _profile(client)
    assert "营销同意有效" in page and len(_consent_rows(page)) == 1
    assert "这个号码不在任何屏蔽名单中。" in page
    assert "已退订" in _profile(client, "13800138000")


@pytest.mark.parametrize("email", ["ann@example.com", "rui@example.com"])
def test_read_only_roles_change_no_contact(client: TestClient, engine: Engine, email: str) -> None:
    csrf = sign_in(client, email)
    for path, fields in ACTIONS:
        for phone in (LI, "13800138000"):
            answer = client.post(path, data={"csrf_token": csrf, "phone": phone, **fields})
            assert answer.status_code == 403, (path, answer.text[-1000:])
            assert "没有权限" in answer.text
    _unchanged(client, engine)


def test_contact_changes_without_the_csrf_token_are_refused(
    client: TestClient, engine: Engine
) -> None:
    sign_in(client, "mei@example.com")
    for path, fields in ACTIONS:
        for token in ({}, {"csrf_token": "forged"}):
            answer = client.post(path, data={"phone": LI, **token, **fields})
            assert answer.status_code == 403, (path, answer.text[-1000:])
            assert "CSRF" in answer.text
    _unchanged(client, engine)


def test_another_workspaces_contact_cannot_be_changed(client: TestClient, engine: Engine) -> None:
    upsert_contacts(
        engine,
        workspace_id=STORE,
        records=[{"phone": "13900139000", "name": "只在 store", "consent": True}],
        consent_source="store_signup",
        list_name=None,
        now=NOW,
    )
    csrf = sign_in(client, "boss@example.com", workspace="other")
    for path, fields in ACTIONS:
        answer = client.post(path, data={"csrf_token": csrf, "phone": "13900139000", **fields})
        assert answer.status_code == 404, (path, answer.text[-1000:])
    # Nothing was created here either (a grant would otherwise make the contact).
    assert client.get("/contacts/view", params={"phone": "13900139000"}).status_code == 404
    sign_in(client, "boss@example.com")
    page = _profile(client, "13900139000")
    assert "营销同意有效" in page and len(_consent_rows(page)) == 1
    assert "这个号码不在任何屏蔽名单中。" in page
    for workspace_id in (1, 2):
        for action in (*CHANGES, "contact.erase"):
            assert _audit(engine, action, workspace_id) == []
