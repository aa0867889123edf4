"""The console's campaign, template and segment tools over each database: editing a
draft campaign (channel included), deciding an A/B test early, a template's test
message through the outbox and a channel, deleting an unused segment or template, and
a lint suggestion's place in the body — each with its bad input, roles, CSRF and
another workspace's records."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from console_support import ACCESS, PASSWORD, sign_in
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from echelon.access.models import AuditEntry
from echelon.access.service import create_user, list_audit
from echelon.api.app import create_app
from echelon.audience.records import upsert_contacts
from echelon.audience.suppression import add_suppression
from echelon.campaigns.rollout import experiment_report
from echelon.campaigns.service import campaign_status, create_campaign, start_campaign
from echelon.channels.simulator import LogNormalDelay, SimulatorConfig, SimulatorProcess
from echelon.config import Settings
from echelon.content.review import approve_template, reject_template, submit_template
from echelon.content.templates import create_template, get_template
from echelon.db.outbox import channels, messages
from echelon.dispatch.channel_admin import (
    add_channel,
    disable_channel,
    list_channels,
    smpp_config,
)
from echelon.dispatch.dispatcher import Dispatcher, DispatchOptions
from echelon.errors import NotFound
from echelon.journeys.service import create_journey
from echelon.segments.service import create_segment, get_segment
from echelon.workspaces.service import Workspace, create_workspace, update_settings

NOW = datetime.now(UTC)
STORE, OTHER = 1, 2  # the fixture's workspaces, in the order it makes them
ZHANG = "13800138000"  # 张三: VIP, marketing consent
TESTER = "13912345678"  # the marketer's own phone: no contact yet


def _template(engine: Engine, workspace_id: int, name: str, body: str, *, approve: bool) -> None:
    create_template(
        engine, workspace_id=workspace_id, name=name, kind="marketing", body=body,
        actor="mei", now=NOW,
    )  # fmt: skip
    if approve:
        submit_template(engine, workspace_id=workspace_id, name=name, actor="mei", now=NOW)
        approve_template(engine, workspace_id=workspace_id, name=name, actor="rui", now=NOW)


def _campaign(engine: Engine, workspace_id: int, name: str, **settings: Any) -> None:
    create_campaign(
        engine,
        workspace_id=workspace_id,
        name=name,
        now=NOW,
        **{
            "template": "双11",
            "audience": {"kind": "segment", "segment": "VIP"},
            "send_at": None,
            "ends_at": None,
            "throttle_per_second": None,
            "budget_yuan": None,
        }
        | settings,
    )


def _shop(engine: Engine, slug: str) -> Workspace:
    """Users of every role; two consenting contacts; segments used by a campaign, a
    journey and another segment, and one nothing uses; templates likewise."""
    workspace, _ = create_workspace(engine, slug=slug, name=f"{slug} 商城")
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    for email, role in (
        ("boss@example.com", "owner"),
        ("rui@example.com", "reviewer"),
        ("mei@example.com", "marketer"),
        ("ann@example.com", "analyst"),
    ):
        create_user(
            engine, workspace_id=workspace.id, email=email, name=email.split("@")[0],
            role=role, password=PASSWORD, now=NOW,
        )  # fmt: skip
    upsert_contacts(
        engine,
        workspace_id=workspace.id,
        records=[
            {"phone": ZHANG, "name": "张三", "tags": ["vip"], "consent": True, "city": "杭州"},
            {"phone": "18612345678", "name": "李四", "consent": True},
        ],
        consent_source="store_signup",
        list_name=None,
        now=NOW,
    )
    create_segment(
        engine, workspace_id=workspace.id, name="VIP",
        definition={"kind": "tag", "tags": ["vip"]}, now=NOW,
    )  # fmt: skip
    create_segment(
        engine, workspace_id=workspace.id, name="VIP 女士",
        definition={"and": [{"kind": "segment", "segment": "VIP"},
                            {"kind": "gender", "value": "female"}]},
        now=NOW,
    )  # fmt: skip
    create_segment(
        engine, workspace_id=workspace.id, name="闲置分群",
        definition={"kind": "tag", "tags": ["old"]}, now=NOW,
    )  # fmt: skip
    _template(engine, workspace.id, "双11", "{{ name }}您好，双11预售开启", approve=True)
    _template(engine, workspace.id, "新品", "{{ name }}您好，{{ city }}门店新品到店", approve=False)
    _template(engine, workspace.id, "关怀", "{{ name }}，感谢一直以来的支持", approve=False)
    _template(engine, workspace.id, "闲置", "周末见", approve=False)
    _campaign(engine, workspace.id, "双11预热")
    create_journey(
        engine, workspace_id=workspace.id, name="VIP 关怀",
        definition={
            "trigger": {"type": "segment", "segment": "VIP"},
            "steps": [{"id": "hi", "type": "send", "template": "关怀"}],
        },
        now=NOW,
    )  # fmt: skip
    return workspace


def _channel(engine: Engine, workspace_id: int, name: str, host: str, port: int) -> int:
    # An SMSC account of its own per channel: two enabled channels may not share one.
    account = f"echelon{len(list_channels(engine, workspace_id=workspace_id))}"
    config = {"host": host, "port": port, "system_id": account, "password": "secret"}
    record = add_channel(
        engine, workspace_id=workspace_id, name=name,
        config=smpp_config(config | {"response_timeout": 2.0, "bind_wait": 1.0}),
        carriers=["all"], weight=1, priority=0, now=NOW,
    )  # fmt: skip
    return record.id


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    _shop(engine, "store")
    _shop(engine, "other")
    # Only the store has channels, and records the other workspace cannot see.
    for name in ("主通道", "备用通道"):
        _channel(engine, STORE, name, "127.0.0.1", 9)
    _campaign(engine, STORE, "仅本店")
    _template(engine, STORE, "仅本店模板", "只在本店", approve=False)
    create_segment(
        engine, workspace_id=STORE, name="仅本店分群",
        definition={"kind": "tag", "tags": ["x"]}, now=NOW,
    )  # fmt: skip
    app = create_app(engine, Settings(), access=ACCESS)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def _audit(engine: Engine, action: str, workspace_id: int = STORE) -> list[AuditEntry]:
    return list_audit(engine, workspace_id=workspace_id, action=action)


def _settings(engine: Engine, name: str, workspace_id: int = STORE) -> dict[str, Any]:
    campaign = campaign_status(engine, workspace_id=workspace_id, name=name)["campaign"]
    keys = ("template", "audience", "send_at", "ends_at", "throttle_per_second", "channel")
    return {key: campaign[key] for key in (*keys, "budget_yuan")}


def _messages(engine: Engine, workspace_id: int = STORE) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(messages)
                .where(messages.c.workspace_id == workspace_id)
                .order_by(messages.c.id)
            )
        )


def _channel_id(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(
            select(channels.c.id).where(channels.c.workspace_id == STORE, channels.c.name == name)
        ).scalar_one()
    return int(found)


EDIT = {
    "name": "双11预热", "template": "双11", "audience": "tag", "tag": "vip",
    "send_at": "2030-11-11T20:00", "ends_at": "2030-11-11T22:00", "throttle": "50",
    "budget": "88.50", "channel": "备用通道",
}  # fmt: skip


# -- 1. editing a draft campaign --------------------------------------------------------


def test_a_marketer_edits_a_draft_campaigns_settings_and_channel(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    view = client.get("/campaigns/view", params={"name": "双11预热"}).text
    assert 'id="edit-campaign"' in view and "自动选择（按路由规则）" in view
    form = client.get("/campaigns/edit", params={"name": "双11预热"})
    assert form.status_code == 200
    # The stored settings are the form's: the segment chosen, the channel not yet.
    assert re.search(r'<option value="1" selected>VIP</option>', form.text)
    assert '<option value="主通道" >' in form.text and " selected>主通道" not in form.text

    saved = client.post(
        "/campaigns/update", data={"csrf_token": csrf, **EDIT}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text[-2000:]
    assert saved.headers["location"].endswith("done=edited")
    page = client.get(saved.headers["location"]).text
    assert "草稿已保存" in page and 'id="campaign-channel">备用通道<' in page
    assert _settings(engine, "双11预热") == {
        "template": "双11",
        "audience": {"kind": "tag", "tag": "vip"},
        "send_at": datetime(2030, 11, 11, 12, 0, tzinfo=UTC),  # 20:00 in Shanghai
        "ends_at": datetime(2030, 11, 11, 14, 0, tzinfo=UTC),
        "throttle_per_second": 50,
        "channel": "备用通道",
        "budget_yuan": "88.5",
    }
    [entry] = _audit(engine, "campaign.edit")
    assert entry.actor == "mei@example.com" and entry.target == "campaign:双11预热"
    assert entry.detail["channel"] == "备用通道" and entry.detail["budget_yuan"] == "88.5"
    # The form shows what is stored now; back to automatic routing and a segment.
    again = client.get("/campaigns/edit", params={"name": "双11预热"}).text
    assert '<option value="备用通道" selected>' in again and 'value="2030-11-11T20:00"' in again
    back = {**EDIT, "audience": "segment", "segment": "VIP", "channel": ""}
    assert client.post("/campaigns/update", data={"csrf_token": csrf, **back}).status_code == 200
    stored = _settings(engine, "双11预热")
    assert stored["channel"] is None and stored["audience"] == {"kind": "segment", "segment": 1}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"throttle": "很快"}, "每秒最多条数「很快」须为整数"),
        ({"throttle": "0"}, "发送速度须至少每秒 1 条"),
        ({"budget": "-5"}, "预算须大于 0"),
        ({"budget": "1.005"}, "金额「1.005」无效"),
        ({"ends_at": "2030-11-11T19:00"}, "结束时间须晚于发送时间"),
        ({"send_at": "明天"}, "时间「明天」无效"),
        ({"channel": "不存在的通道"}, "通道「不存在的通道」不存在"),
        ({"template": "没有这个模板"}, "模板「没有这个模板」不存在"),
        ({"audience": "segment", "segment": "没有这个分群"}, "分群「没有这个分群」不存在"),
        ({"audience": "tag", "tag": " "}, "受众设置无效"),
    ],
)
def test_a_bad_edit_is_refused_with_its_reason_and_changes_nothing(
    client: TestClient, engine: Engine, change: dict[str, str], reason: str
) -> None:
    csrf = sign_in(client, "mei@example.com")
    before = _settings(engine, "双11预热")
    answer = client.post("/campaigns/update", data={"csrf_token": csrf, **EDIT, **change})
    assert 400 <= answer.status_code < 500, answer.text[-1000:]
    problem = re.search(r'id="problem">([^<]*)<', answer.text)
    assert problem is not None and reason in problem.group(1), answer.text[-1500:]
    # The form keeps what was typed, to correct it.
    assert 'value="88.50"' in answer.text or change.get("budget", "") in answer.text
    assert _settings(engine, "双11预热") == before
    assert _audit(engine, "campaign.edit") == []


def test_a_started_campaign_cannot_be_edited(client: TestClient, engine: Engine) -> None:
    start_campaign(engine, workspace_id=STORE, name="双11预热", now=NOW)
    csrf = sign_in(client, "mei@example.com")
    before = _settings(engine, "双11预热")
    assert 'id="edit-campaign"' not in client.get("/campaigns/view?name=双11预热").text
    for answer in (
        client.get("/campaigns/edit", params={"name": "双11预热"}),
        client.post("/campaigns/update", data={"csrf_token": csrf, **EDIT}),
    ):
        assert answer.status_code == 409, answer.text[-1000:]
        assert "已开始的活动不能修改，只有草稿可以修改" in answer.text
    assert _settings(engine, "双11预热") == before
    assert _audit(engine, "campaign.edit") == []


# -- 2. deciding an A/B test early ------------------------------------------------------


def _ab_test(engine: Engine) -> None:
    _campaign(
        engine, STORE, "A/B 预热", audience={"kind": "consenting"},
        experiment={
            "variants": [{"name": "A"}, {"name": "B", "template": "双11"}],
            "mode": "test", "test_share": 50, "window_hours": 4,
        },
    )  # fmt: skip
    start_campaign(engine, workspace_id=STORE, name="A/B 预热", now=NOW)


def test_a_marketer_decides_an_ab_test_early_after_confirming(
    client: TestClient, engine: Engine
) -> None:
    _ab_test(engine)
    csrf = sign_in(client, "mei@example.com")
    page = client.get("/campaigns/view", params={"name": "A/B 预热"}).text
    assert 'id="decide-early"' in page
    assert 'data-confirm="测试窗口尚未结束，数据可能还不充分。确认现在选出胜出版本' in page

    decided = client.post(
        "/campaigns/decide", data={"csrf_token": csrf, "name": "A/B 预热"}, follow_redirects=False
    )
    assert decided.status_code == 303, decided.text[-2000:]
    page = client.get(decided.headers["location"]).text
    assert "已选出胜出版本" in page and 'id="experiment-decision"' in page
    assert 'id="decide-early"' not in page
    report = experiment_report(engine, workspace_id=STORE, name="A/B 预热", now=NOW)
    assert report["decision"] is not None and report["decision"]["chosen"] in ("A", "B")
    [entry] = _audit(engine, "campaign.decide")
    assert entry.target == "campaign:A/B 预热" and entry.detail == report["decision"]

    # Decided once: deciding again changes nothing and answers as the API does.
    again = client.post(
        "/campaigns/decide", data={"csrf_token": csrf, "name": "A/B 预热"}, follow_redirects=False
    )
    assert again.status_code == 303, again.text[-2000:]
    after = experiment_report(engine, workspace_id=STORE, name="A/B 预热", now=NOW)
    assert after["decision"] == report["decision"]


def test_a_campaign_without_a_running_test_cannot_be_decided(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    answer = client.post("/campaigns/decide", data={"csrf_token": csrf, "name": "双11预热"})
    assert answer.status_code == 422 and "没有「先测试后推广」的 A/B 测试" in answer.text
    assert _audit(engine, "campaign.decide") == []


# -- 3. a template's test message -------------------------------------------------------


def _test_message(client: TestClient, csrf: str, **fields: str) -> Any:
    return client.post("/templates/test", data={"csrf_token": csrf, **fields})


def test_a_test_message_with_sample_values_goes_into_the_outbox_as_a_test(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    page = client.get("/templates/view", params={"name": "新品"}).text  # a draft
    assert 'id="test-form"' in page
    assert 'name="v.name" value="张三"' in page and 'name="v.city" value="深圳"' in page

    answer = _test_message(
        client, csrf, template="新品", to=TESTER, source="sample",
        **{"v.name": "王五", "v.city": "苏州"}, channel="主通道",
    )  # fmt: skip
    assert answer.status_code == 200, answer.text[-2000:]
    assert 'id="test-queued"' in answer.text and "+8613912345678" in answer.text
    [message] = _messages(engine)
    assert message.text == "【星河商城】王五您好，苏州门店新品到店，拒收请回复R"
    assert (message.kind, message.status, message.campaign_id) == ("test", "queued", None)
    assert message.phone == "+8613912345678" and message.cost_e4 > 0
    assert message.channel_id == _channel_id(engine, "主通道")
    [entry] = [e for e in _audit(engine, "message.send") if e.detail.get("kind") == "test"]
    assert entry.target == f"message:{message.id}" and entry.actor == "mei@example.com"
    assert entry.detail == {
        "phone": "+8613912345678", "kind": "test", "status": "queued",
        "template": "新品", "campaign": None,
    }  # fmt: skip


def test_a_sample_value_left_empty_takes_the_templates_default(
    client: TestClient, engine: Engine
) -> None:
    _template(engine, STORE, "有默认", "{{ name | default('会员') }}您好，周末见", approve=False)
    csrf = sign_in(client, "mei@example.com")
    answer = _test_message(client, csrf, template="有默认", to=TESTER, **{"v.name": " "})
    assert 'id="test-queued"' in answer.text, answer.text[-2000:]
    assert [m.text for m in _messages(engine)] == ["【星河商城】会员您好，周末见，拒收请回复R"]


def test_a_test_message_for_a_contact_from_the_campaign_page_takes_its_channel(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    client.post("/campaigns/update", data={"csrf_token": csrf, **EDIT})  # channel 备用通道
    page = client.get("/campaigns/view", params={"name": "双11预热"}).text
    assert 'id="test-form"' in page and 'name="campaign" value="双11预热"' in page
    assert '<option value="备用通道" selected>' in page.split('id="test-channel"')[1]

    answer = _test_message(
        client, csrf, template="双11", campaign="双11预热", to=TESTER, source="contact",
        contact=ZHANG, channel="备用通道",
    )  # fmt: skip
    assert 'id="test-queued"' in answer.text, answer.text[-2000:]
    [message] = _messages(engine)
    assert message.text.startswith("【星河商城】张三您好，双11预售开启")
    assert message.channel_id == _channel_id(engine, "备用通道")
    assert message.campaign_id is None  # billed to no campaign
    assert campaign_status(engine, workspace_id=STORE, name="双11预热")["by_status"] == {}
    [entry] = _audit(engine, "message.send")
    assert entry.detail["campaign"] == "双11预热"


def test_a_test_message_honours_suppressions_and_the_rate_limit(
    client: TestClient, engine: Engine
) -> None:
    add_suppression(
        engine, workspace_id=STORE, phone="13700001111", kind="blacklist", source="console",
        reason="投诉", now=NOW,
    )  # fmt: skip
    csrf = sign_in(client, "mei@example.com")
    sample = {"template": "双11", "source": "sample", "v.name": "王五"}
    blocked = _test_message(client, csrf, to="13700001111", **sample)
    assert 'id="test-blocked"' in blocked.text and "测试短信未发送：黑名单" in blocked.text
    assert _test_message(client, csrf, to=TESTER, **sample).status_code == 200
    again = _test_message(client, csrf, to=TESTER, **sample | {"v.name": "赵六"})
    assert "测试短信未发送：超过单号码发送频率" in again.text
    assert [(m.status, m.block_reason) for m in _messages(engine)] == [
        ("blocked", "blacklist"), ("queued", None), ("blocked", "rate_limit"),
    ]  # fmt: skip
    assert [m.cost_e4 > 0 for m in _messages(engine)] == [False, True, False]
    # A blocked word stops it too (recorded, like the planner's content block).
    create_template(
        engine, workspace_id=STORE, name="夸张", kind="marketing", body="全场最佳好货",
        actor="mei", now=NOW,
    )  # fmt: skip
    worded = _test_message(client, csrf, to="18600001111", template="夸张", source="sample")
    assert "测试短信未发送：个性化内容含禁用词" in worded.text
    assert _messages(engine)[-1].block_reason == "content"


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        ({"to": " "}, 422, "请填写接收测试短信的手机号"),
        ({"to": "12345"}, 422, "12345&#39; 无效"),
        ({"v.name": ""}, 422, "请填写变量 name 的示例值"),
        ({"source": "contact", "contact": ""}, 422, "请填写联系人手机号"),
        ({"source": "contact", "contact": "18700000000"}, 404, "联系人 +8618700000000 不存在"),
        ({"channel": "没有的通道"}, 404, "通道「没有的通道」不存在"),
        ({"template": "没有的模板"}, 404, "模板「没有的模板」不存在"),
        ({"campaign": "没有的活动"}, 404, "活动「没有的活动」不存在"),
    ],
)
def test_a_bad_test_message_is_refused_with_its_reason_and_sends_nothing(
    client: TestClient, engine: Engine, fields: dict[str, str], status: int, reason: str
) -> None:
    csrf = sign_in(client, "mei@example.com")
    sample = {"template": "双11", "to": TESTER, "source": "sample", "v.name": "王五"}
    answer = _test_message(client, csrf, **sample | fields)
    assert answer.status_code == status, answer.text[-1000:]
    assert reason in answer.text
    assert _messages(engine) == [] and _audit(engine, "message.send") == []


def test_a_rejected_template_sends_no_test(client: TestClient, engine: Engine) -> None:
    submit_template(engine, workspace_id=STORE, name="新品", actor="mei", now=NOW)
    reject_template(
        engine, workspace_id=STORE, name="新品", actor="rui", reason="太长", now=NOW
    )  # fmt: skip
    csrf = sign_in(client, "mei@example.com")
    assert 'id="test-form"' not in client.get("/templates/view?name=新品").text
    answer = _test_message(
        client, csrf, template="新品", to=TESTER, **{"v.name": "王五", "v.city": "苏州"}
    )
    assert answer.status_code == 409 and "已被驳回，修改后才能发送测试短信" in answer.text
    assert _messages(engine) == []


def test_a_test_message_arrives_through_the_channel(client: TestClient, engine: Engine) -> None:
    for name in ("主通道", "备用通道"):
        disable_channel(engine, workspace_id=STORE, name=name, now=NOW)
    fast = LogNormalDelay(median_ms=5, p95_ms=20)
    config = SimulatorConfig(
        seed=7, delivery_success_ratio=1.0, receipt_delay=fast, reply_delay=fast,
        record_messages=True,
    )  # fmt: skip
    with SimulatorProcess(config) as sim:
        _channel(engine, STORE, "模拟网关", sim.host, sim.port)
        csrf = sign_in(client, "mei@example.com")
        answer = _test_message(
            client, csrf, template="新品", to=TESTER, source="contact", contact=ZHANG
        )
        assert 'id="test-queued"' in answer.text, answer.text[-2000:]
        dispatcher = Dispatcher(
            engine, options=DispatchOptions(poll_interval=0.05, refresh_interval=0.5)
        )
        asyncio.run(asyncio.wait_for(dispatcher.run(until_idle=True, receipt_wait=5.0), timeout=60))
        seen = sim.stop()
    [message] = _messages(engine)
    assert (message.kind, message.status) == ("test", "delivered")
    [sent] = seen.messages
    assert sent.destination.endswith("13912345678")
    assert sent.text == "【星河商城】张三您好，杭州门店新品到店，拒收请回复R"


# -- 4. deleting a segment or a template ------------------------------------------------


def test_an_unused_segment_is_deleted_after_confirming(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "mei@example.com")
    unused = get_segment(engine, workspace_id=STORE, segment="闲置分群")
    page = client.get("/segments/view", params={"id": unused.id}).text
    assert 'data-confirm="确认删除分群「闲置分群」？删除后不能恢复。"' in page
    deleted = client.post(
        "/segments/delete", data={"csrf_token": csrf, "id": str(unused.id)}, follow_redirects=False
    )
    assert deleted.status_code == 303 and deleted.headers["location"] == "/segments?done=deleted"
    listing = client.get(deleted.headers["location"]).text
    assert "分群已删除。" in listing and "闲置分群" not in listing
    assert client.get("/segments/view", params={"id": unused.id}).status_code == 404
    [entry] = _audit(engine, "segment.delete")
    assert entry.target == f"segment:{unused.id}" and entry.detail["name"] == "闲置分群"
    assert entry.detail["definition"] == {"kind": "tag", "tags": ["old"]}


def test_a_segment_in_use_is_not_deleted_and_the_users_are_named(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    vip = get_segment(engine, workspace_id=STORE, segment="VIP")
    answer = client.post("/segments/delete", data={"csrf_token": csrf, "id": str(vip.id)})
    assert answer.status_code == 409
    assert (
        "分群「VIP」正在被使用，不能删除：活动「仅本店」、「双11预热」；"
        "自动旅程「VIP 关怀」；分群「VIP 女士」"
    ) in answer.text
    assert get_segment(engine, workspace_id=STORE, segment=vip.id).name == "VIP"
    assert _audit(engine, "segment.delete") == []


def test_an_unused_template_is_deleted_and_one_in_use_is_not(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    page = client.get("/templates/view", params={"name": "闲置"}).text
    assert 'data-confirm="确认删除模板「闲置」？它的审核历史也会一并删除，不能恢复。"' in page
    deleted = client.post(
        "/templates/delete", data={"csrf_token": csrf, "name": "闲置"}, follow_redirects=False
    )
    assert deleted.status_code == 303 and deleted.headers["location"] == "/templates?done=deleted"
    assert "模板已删除。" in client.get(deleted.headers["location"]).text
    with pytest.raises(NotFound):
        get_template(engine, workspace_id=STORE, name="闲置")
    [entry] = _audit(engine, "template.delete")
    assert entry.target == "template:闲置"
    assert entry.detail == {"kind": "marketing", "status": "draft", "body": "周末见"}

    for name, users in (
        ("双11", "活动「仅本店」、「双11预热」"),
        ("关怀", "自动旅程「VIP 关怀」"),
    ):
        refused = client.post("/templates/delete", data={"csrf_token": csrf, "name": name})
        assert refused.status_code == 409
        assert f"模板「{name}」正在被使用，不能删除：{users}" in refused.text
        assert get_template(engine, workspace_id=STORE, name=name).name == name
    assert len(_audit(engine, "template.delete")) == 1


def test_a_template_used_only_by_an_ab_variant_is_not_deleted(
    client: TestClient, engine: Engine
) -> None:
    _template(engine, STORE, "版本B", "{{ name }}，双11来了", approve=True)
    _campaign(
        engine, STORE, "A/B 草稿",
        experiment={"variants": [{"name": "A"}, {"name": "B", "template": "版本B"}]},
    )  # fmt: skip
    csrf = sign_in(client, "mei@example.com")
    refused = client.post("/templates/delete", data={"csrf_token": csrf, "name": "版本B"})
    assert refused.status_code == 409 and "活动「A/B 草稿」" in refused.text


# -- 5. a lint suggestion's place in the body -------------------------------------------


def _apply_buttons(html: str) -> list[tuple[str, str, str, str]]:
    return re.findall(
        r'class="link apply-suggestion" data-start="(\d+)" data-end="(\d+)" '
        r'data-match="([^"]*)" data-suggestion="([^"]*)"',
        html,
    )


def test_each_lint_hit_in_the_body_offers_its_suggestion_at_its_place(
    client: TestClient,
) -> None:
    csrf = sign_in(client, "mei@example.com")
    # Leading blanks, a CRLF line break (as a form posts a textarea) and an emoji
    # (two UTF-16 units): the offsets are those of the textarea's value.
    body = "  😀您好\r\n这是最佳选择，全网最低价"
    checked = client.post(
        "/templates/check", data={"csrf_token": csrf, "body": body, "kind": "marketing"}
    )
    assert checked.status_code == 200
    value = "  😀您好\n这是最佳选择，全网最低价"  # as the browser holds it
    buttons = _apply_buttons(checked.text)
    assert ("9", "11", "最佳", "优选") in buttons, buttons
    for start, end, match, _ in buttons:
        assert value.encode("utf-16-le")[int(start) * 2 : int(end) * 2].decode("utf-16-le") == match
    # A word in the signature is not the body's to change: no button for it.
    signed = client.post(
        "/templates/check",
        data={"csrf_token": csrf, "body": "今天上新", "kind": "marketing", "signature": "最佳商城"},
    )
    assert "最佳" in signed.text and _apply_buttons(signed.text) == []
    # Only a writer gets the buttons.
    sign_in(client, "rui@example.com")
    read_only = client.post(
        "/templates/check", data={"csrf_token": csrf, "body": body, "kind": "marketing"}
    )
    assert _apply_buttons(read_only.text) == []


# -- roles, CSRF and another workspace --------------------------------------------------

ACTIONS = (
    ("/campaigns/update", EDIT),
    ("/campaigns/decide", {"name": "A/B 预热"}),
    ("/templates/test", {"template": "双11", "to": TESTER, "source": "sample", "v.name": "王五"}),
    ("/templates/delete", {"name": "闲置"}),
    ("/segments/delete", {"id": "3"}),  # 闲置分群
)


def _nothing_changed(engine: Engine, before: dict[str, Any]) -> None:
    assert _settings(engine, "双11预热") == before
    assert (
        experiment_report(engine, workspace_id=STORE, name="A/B 预热", now=NOW)["decision"] is None
    )
    assert [m.kind for m in _messages(engine)].count("test") == 0
    assert get_template(engine, workspace_id=STORE, name="闲置").name == "闲置"
    assert get_segment(engine, workspace_id=STORE, segment=3).name == "闲置分群"
    for action in ("campaign.edit", "campaign.decide", "message.send", "template.delete",
                   "segment.delete"):  # fmt: skip
        assert _audit(engine, action) == [], action


@pytest.mark.parametrize("email", ["ann@example.com", "rui@example.com"])
def test_read_only_roles_are_refused_every_tool(
    client: TestClient, engine: Engine, email: str
) -> None:
    _ab_test(engine)
    before = _settings(engine, "双11预热")
    csrf = sign_in(client, email)
    page = client.get("/campaigns/view", params={"name": "A/B 预热"}).text
    assert 'id="decide-early"' not in page and 'id="test-form"' not in page
    assert client.get("/campaigns/edit", params={"name": "双11预热"}).status_code == 403
    for path, fields in ACTIONS:
        answer = client.post(path, data={"csrf_token": csrf, **fields})
        assert answer.status_code == 403, (path, answer.text[-1000:])
        assert "没有权限" in answer.text
    _nothing_changed(engine, before)


def test_every_tool_needs_the_csrf_token(client: TestClient, engine: Engine) -> None:
    _ab_test(engine)
    before = _settings(engine, "双11预热")
    sign_in(client, "mei@example.com")
    for path, fields in ACTIONS:
        for token in ({}, {"csrf_token": "forged"}):
            answer = client.post(path, data={**token, **fields})
            assert answer.status_code == 403, (path, answer.text[-1000:])
            assert "CSRF" in answer.text
    _nothing_changed(engine, before)


def test_another_workspaces_records_are_not_found(client: TestClient, engine: Engine) -> None:
    _ab_test(engine)
    before = _settings(engine, "仅本店")
    store_only = get_segment(engine, workspace_id=STORE, segment="仅本店分群")
    csrf = sign_in(client, "boss@example.com", workspace="other")
    assert client.get("/campaigns/edit", params={"name": "仅本店"}).status_code == 404
    for path, fields in (
        ("/campaigns/update", {**EDIT, "name": "仅本店", "channel": ""}),
        ("/campaigns/decide", {"name": "A/B 预热"}),
        ("/templates/test", {"template": "仅本店模板", "to": TESTER, "source": "sample"}),
        ("/templates/test", {"template": "双11", "campaign": "仅本店", "to": TESTER,
                             "source": "sample", "v.name": "王五"}),
        ("/templates/delete", {"name": "仅本店模板"}),
        ("/segments/delete", {"id": str(store_only.id)}),
    ):  # fmt: skip
        answer = client.post(path, data={"csrf_token": csrf, **fields})
        assert answer.status_code == 404, (path, answer.text[-1000:])
        assert "不存在" in answer.text
    # The other workspace's own channel list never shows the store's channels.
    assert "主通道" not in client.get("/campaigns/edit", params={"name": "双11预热"}).text
    assert _settings(engine, "仅本店") == before
    assert get_template(engine, workspace_id=STORE, name="仅本店模板").name == "仅本店模板"
    assert get_segment(engine, workspace_id=STORE, segment=store_only.id).name == "仅本店分群"
    assert _messages(engine, OTHER) == []
    for workspace_id in (STORE, OTHER):
        for action in ("campaign.edit", "campaign.decide", "template.delete", "segment.delete"):
            assert _audit(engine, action, workspace_id) == [], action
