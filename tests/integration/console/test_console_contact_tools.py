"""The console's contact tools over each database through the HTTP app: editing a
contact and its tags, consent by purpose, importing events and suppression lists, the
message log, answering a reply, one's own password — each refused for read-only
roles, without the CSRF token, and for another workspace's records."""

from __future__ import annotations

import html
import io
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from console_support import ACCESS, PASSWORD, add_staff, sign_in
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, event, func, select

from echelon.access.models import AuditEntry, Principal, Role
from echelon.access.sending import send_message
from echelon.access.service import list_audit
from echelon.api.app import create_app
from echelon.audience.contacts import get_contact
from echelon.audience.records import upsert_contacts
from echelon.campaigns.service import create_campaign, start_campaign
from echelon.channels.base import InboundReply
from echelon.config import Settings
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.outbox import messages, replies
from echelon.db.tables import events, suppressions
from echelon.dispatch.inbound import record_reply
from echelon.dispatch.log import message_page
from echelon.journeys.runner import advance_due
from echelon.journeys.service import activate_journey, create_journey, enrol_contact
from echelon.workspaces.service import Workspace, create_workspace, update_settings

NOW = datetime.now(UTC).replace(microsecond=0)
STORE, OTHER = 1, 2  # the workspaces the fixture makes, in order
ZHANG = "+8613800138000"  # vip, marketing consent
LI = "+8618612345678"  # marketing consent
ASKER = "+8613912341314"  # asked a question by reply; no consent
QUESTION = "请问周末营业吗？"


def _shop(engine: Engine, slug: str) -> Workspace:
    workspace, _ = create_workspace(engine, slug=slug, name=f"{slug} 商城")
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    add_staff(engine, workspace.id, NOW)
    upsert_contacts(
        engine,
        workspace_id=workspace.id,
        records=[
            {"phone": ZHANG, "name": "张三", "tags": ["vip"], "consent": True},
            {"phone": LI, "name": "李四", "consent": True, "attributes": {"积分": 120}},
        ],
        consent_source="store_signup",
        list_name=None,
        now=NOW - timedelta(days=30),
    )
    record_reply(
        engine,
        workspace_id=workspace.id,
        channel_id=None,
        reply=InboundReply(ASKER, "1069", "", f"{slug} {QUESTION}", NOW),
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


def _csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text)
    assert found is not None
    return found.group(1)


def _audit(engine: Engine, action: str, workspace_id: int = STORE) -> list[AuditEntry]:
    """The audit lines of ``action``, newest first."""
    return list_audit(engine, workspace_id=workspace_id, action=action)


def _profile(client: TestClient, phone: str = LI) -> str:
    answer = client.get("/contacts/view", params={"phone": phone})
    assert answer.status_code == 200, answer.text[-2000:]
    return str(answer.text)


def _problem(text: str) -> str:
    found = re.search(r'id="problem">(.*?)</div>', text, flags=re.S)
    assert found is not None, text[-2000:]
    return html.unescape(str(found.group(1)))


def _edit_form(**fields: str) -> dict[str, str]:
    form = {
        "phone": LI, "name": "李四", "gender": "", "birthday": "", "province": "", "city": "",
        "attr.0.name": "积分", "attr.0.value": "120", "attr.1.name": "", "attr.1.value": "",
    }  # fmt: skip
    return form | fields


# -- a contact's fields, attributes and tags -----------------------------------------------


def test_a_marketer_edits_a_contacts_fields_and_attributes(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    form = client.get("/contacts/edit", params={"phone": LI}).text
    assert 'value="李四"' in form and 'value="积分"' in form and 'value="120"' in form

    saved = client.post(
        "/contacts/edit",
        data=_edit_form(
            csrf_token=csrf, name="李四娘", gender="female", birthday="1990/05/17",
            birthday_lunar="1", province="广东", city="深圳", **{"attr.1.name": "会员等级",
            "attr.1.value": "金"},
        ),
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303, saved.text[-2000:]
    assert saved.headers["location"].endswith("done=edited")
    assert "资料已保存。" in client.get(saved.headers["location"]).text
    stored = get_contact(engine, workspace_id=STORE, phone=LI)
    assert (stored.name, stored.gender, str(stored.birthday)) == ("李四娘", "female", "1990-05-17")
    assert stored.birthday_lunar and (stored.province, stored.city) == ("广东省", "深圳")
    # 积分 was typed as it reads: it stays the number it was.
    assert stored.attributes == {"积分": 120, "会员等级": "金"}
    [entry] = _audit(engine, "contact.update")
    assert "mei" in entry.actor and entry.target == f"contact:{LI}"
    assert set(entry.detail["fields"]) == {  # type: ignore[call-overload]
        "name", "gender", "birthday", "birthday_lunar", "province", "city", "attributes",
    }  # fmt: skip

    # Cleared fields and values are removed; saving the same again changes nothing.
    cleared = _edit_form(csrf_token=csrf, name="李四", **{"attr.0.value": ""})
    assert client.post("/contacts/edit", data=cleared).status_code == 200
    stored = get_contact(engine, workspace_id=STORE, phone=LI)
    assert stored.birthday is None and not stored.birthday_lunar and stored.attributes == {}
    again = client.post("/contacts/edit", data=cleared, follow_redirects=False)
    assert again.headers["location"].endswith("done=unchanged")
    assert len(_audit(engine, "contact.update")) == 2


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"birthday": "明年"}, "生日 的值 '明年' 无法识别：日期应写作 1990-05-17"),
        ({"province": "火星"}, "省份 的值 '火星' 无法识别"),
        ({"gender": "x"}, "性别 的值 'x' 无法识别"),
        ({"city": "深" * 33}, "城市 的值"),
        ({"attr.1.value": "无名"}, "属性值「无名」没有属性名"),
        ({"attr.1.name": "积分", "attr.1.value": "1"}, "属性名「积分」出现了两次"),
        ({"attr.1.name": "长" * 65, "attr.1.value": "1"}, "须为 1–64 个字符"),
        ({"phone": "12345"}, "号码 '12345' 无效"),
    ],
)
def test_a_bad_value_is_refused_by_name_and_nothing_is_stored(
    client: TestClient, engine: Engine, fields: dict[str, str], reason: str
) -> None:
    csrf = sign_in(client, "mei@example.com")
    before = get_contact(engine, workspace_id=STORE, phone=LI)
    refused = client.post("/contacts/edit", data=_edit_form(csrf_token=csrf, name="改了", **fields))
    assert refused.status_code == 422, refused.text[-2000:]
    assert reason in html.unescape(refused.text)
    if "phone" not in fields:
        # The form comes back as typed, with the reason above it.
        assert reason in _problem(refused.text) and 'value="改了"' in refused.text
    assert get_contact(engine, workspace_id=STORE, phone=LI) == before
    assert _audit(engine, "contact.update") == []


def test_a_marketer_adds_and_removes_tags(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "mei@example.com")
    added = client.post(
        "/contacts/tags/add", data={"csrf_token": csrf, "phone": ZHANG, "tags": "会员，老客 vip"}
    )
    assert added.status_code == 200 and "标签已更新。" in added.text
    assert set(get_contact(engine, workspace_id=STORE, phone=ZHANG).tags) == {"vip", "会员", "老客"}
    assert 'data-tag="老客"' in added.text
    [entry] = _audit(engine, "contact.tag")
    assert entry.detail == {"added": ["会员", "老客"], "removed": []}

    removed = client.post(
        "/contacts/tags/remove", data={"csrf_token": csrf, "phone": ZHANG, "tag": "vip"}
    )
    assert removed.status_code == 200 and 'data-tag="vip"' not in removed.text
    assert set(get_contact(engine, workspace_id=STORE, phone=ZHANG).tags) == {"会员", "老客"}
    gone = client.post(
        "/contacts/tags/remove", data={"csrf_token": csrf, "phone": ZHANG, "tag": "vip"}
    )
    assert "标签没有变化。" in gone.text
    newest = _audit(engine, "contact.tag")[0]  # newest first
    assert newest.detail == {"added": [], "removed": ["vip"]}

    for text, reason in (("  ", "请填写要添加的标签"), ("长" * 65, "每个标签最多 64 个字符")):
        refused = client.post(
            "/contacts/tags/add", data={"csrf_token": csrf, "phone": ZHANG, "tags": text}
        )
        assert refused.status_code == 422 and reason in _problem(refused.text)
    assert set(get_contact(engine, workspace_id=STORE, phone=ZHANG).tags) == {"会员", "老客"}
    assert len(_audit(engine, "contact.tag")) == 2


def test_service_consent_is_kept_apart_from_marketing(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "mei@example.com")
    page = _profile(client)
    assert 'id="service-consent-grant"' in page and "营销同意有效" in page

    granted = client.post(
        "/contacts/consent/grant",
        data={"csrf_token": csrf, "phone": LI, "purpose": "service", "source": "app_settings"},
    )
    assert granted.status_code == 200 and "已记录通知同意。" in granted.text
    assert 'id="service-consent-withdraw"' in granted.text
    assert re.search(r"<tr><td>通知</td><td>[^<]+</td><td>app_settings", granted.text)
    [entry] = _audit(engine, "consent.grant")
    assert entry.detail["purpose"] == "service"

    withdrawn = client.post(
        "/contacts/consent/withdraw", data={"csrf_token": csrf, "phone": LI, "purpose": "service"}
    )
    assert "通知同意已撤回，立即生效。" in withdrawn.text
    assert "营销同意有效" in withdrawn.text  # marketing consent is untouched
    [entry] = _audit(engine, "consent.revoke")
    assert entry.detail == {"purpose": "service", "source": "console"}

    bogus = client.post(
        "/contacts/consent/grant",
        data={"csrf_token": csrf, "phone": LI, "purpose": "sales", "source": "x"},
    )
    assert bogus.status_code == 422 and "同意用途只能是营销或通知" in bogus.text
    assert len(get_contact(engine, workspace_id=STORE, phone=LI).consents) == 2


# -- importing events and suppression lists --------------------------------------------------


def _import(
    client: TestClient, base: str, csrf: str, name: str, body: str, **fields: str
) -> tuple[str, str]:
    """Upload, map as suggested, run; (the job, its finished progress fragment)."""
    uploaded = client.post(
        base,
        data={"csrf_token": csrf},
        files={"file": (name, io.BytesIO(body.encode("utf-8-sig")), "text/csv")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text[-2000:]
    job = uploaded.headers["location"].split("job=")[1]
    mapping = client.get(f"{base}/map", params={"job": job}).text
    chosen = {}
    for index, options in re.findall(
        r'<select name="map\.(\d+)"[^>]*>(.*?)</select>', mapping, re.S
    ):
        selected = re.search(r'<option value="(\w+)" selected', options)
        chosen[f"map.{index}"] = selected.group(1) if selected else ""
    assert chosen, mapping[-2000:]
    run = client.post(
        f"{base}/run",
        data={"csrf_token": csrf, "job": job, **chosen, **fields},
        follow_redirects=False,
    )
    assert run.status_code == 303, run.text[-2000:]
    for _ in range(300):
        progress = client.get(f"{base}/status", params={"job": job}, headers={"HX-Request": "true"})
        if 'data-state="done"' in progress.text or 'data-state="failed"' in progress.text:
            return job, progress.text
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def _cell(fragment: str, cell_id: str) -> int:
    found = re.search(rf'id="{cell_id}">([\d,]+)<', fragment)
    assert found is not None, fragment
    return int(found.group(1).replace(",", ""))


EVENTS_CSV = (
    "手机号,事件,时间,金额,订单号,品类,渠道\n"
    "13800138000,购买,2026-11-11 20:00,299.00,SO-1001,女装,小程序\n"
    "13800138000,cart_add,2026-11-10 21:15,,,鞋靴,小程序\n"
    '18612345678,purchase,2026-11-11 09:30:00,"¥1,299.50",SO-1002,,门店\n'
    "13900139000,purchase,2026-11-11 10:00,88,SO-1003,,门店\n"
    "13800138000,purchase,明天,10,SO-1004,,门店\n"
    "12345,purchase,2026-11-11 10:00,10,SO-1005,,门店\n"
    "18612345678,purchase,2026-11-11 11:00,-5,SO-1006,,门店\n"
)


def _events(engine: Engine, workspace_id: int = STORE) -> list[tuple[Any, ...]]:
    e = events.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.type, e.amount_fen, e.order_id).where(e.workspace_id == workspace_id)
        )
        return sorted((tuple(row) for row in rows), key=lambda r: (r[2] or "", r[0]))


def test_events_and_orders_are_imported_with_their_rejected_rows(
    client: TestClient, engine: Engine
) -> None:
    csrf = sign_in(client, "mei@example.com")
    assert 'href="/contacts/events/import"' in client.get("/contacts").text
    base = "/contacts/events/import"
    job, done = _import(client, base, csrf, "订单.csv", EVENTS_CSV)
    assert 'data-state="done"' in done
    assert _cell(done, "import-imported") == 4 and _cell(done, "import-rejected") == 3
    assert "新建联系人（无任何同意）" in done  # 13900139000 was new
    assert _events(engine) == [
        ("cart_add", None, None),
        ("purchase", 29900, "SO-1001"),
        ("purchase", 129950, "SO-1002"),
        ("purchase", 8800, "SO-1003"),
    ]
    assert _events(engine, OTHER) == []
    rejects = client.get(f"{base}/rejects", params={"job": job})
    assert rejects.status_code == 200
    text = rejects.content.decode("utf-8-sig")
    assert "时间 的值 '明天' 无法识别" in text and "号码 '12345' 无效" in text
    assert "金额不能为负数" in text and text.splitlines()[0].startswith("行号,原因,手机号")
    [entry] = _audit(engine, "events.import")
    assert entry.target == "events:import"
    assert entry.detail == {"file": "订单.csv", "rows": 7, "imported": 4, "rejected": 3}
    assert "SO-1001" in _profile(client, ZHANG)

    # Imported again: every event is known by its content, nothing is recorded twice.
    _, again = _import(client, base, csrf, "订单.csv", EVENTS_CSV)
    assert _cell(again, "import-imported") == 0 and len(_events(engine)) == 4

    # Without an event-type column the file is refused before anything runs.
    uploaded = client.post(
        base,
        data={"csrf_token": csrf},
        files={"file": ("x.csv", io.BytesIO("手机号,时间\n13800138000,2026-11-11\n".encode()))},
        follow_redirects=False,
    )
    job = uploaded.headers["location"].split("job=")[1]
    refused = client.post(
        f"{base}/run", data={"csrf_token": csrf, "job": job, "map.0": "phone", "map.1": ""}
    )
    assert refused.status_code == 422
    assert "没有对应“事件类型”的列" in refused.text
    # A contacts job is not an events job (nor the other way round).
    assert client.get("/contacts/import/map", params={"job": job}).status_code == 404


SUPPRESSIONS_CSV = "号码,原因\n13800138000,多次投诉\n13700137000,\n1380013800x,坏号\n"


def _suppressions(engine: Engine, workspace_id: int = STORE) -> list[tuple[str, str, str]]:
    s = suppressions.c
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(s.phone, s.kind, s.source)
                .where(s.workspace_id == workspace_id, s.kind != "opt_out")
                .order_by(s.phone)
            )
        ]


def test_a_suppression_list_is_imported(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "mei@example.com")
    base = "/contacts/suppressions/import"
    job, done = _import(
        client, base, csrf, "投诉名单.csv", SUPPRESSIONS_CSV, kind="blacklist", source="客服"
    )
    assert _cell(done, "import-imported") == 2 and _cell(done, "import-rejected") == 1
    assert _suppressions(engine) == [
        ("+8613700137000", "blacklist", "客服"),
        ("+8613800138000", "blacklist", "客服"),
    ]
    assert "黑名单" in _profile(client, ZHANG)
    rejects = client.get(f"{base}/rejects", params={"job": job}).content.decode("utf-8-sig")
    assert "1380013800x" in rejects and "无效" in rejects
    [entry] = _audit(engine, "suppression.add")
    assert entry.target == "suppressions:import"
    assert entry.detail["kind"] == "blacklist" and entry.detail["imported"] == 2

    # Only the kinds a person may add: 空号 comes from receipts, never from a file.
    uploaded = client.post(
        base,
        data={"csrf_token": csrf},
        files={"file": ("x.csv", io.BytesIO(b"phone\n13500135000\n"))},
        follow_redirects=False,
    )
    job = uploaded.headers["location"].split("job=")[1]
    refused = client.post(
        f"{base}/run", data={"csrf_token": csrf, "job": job, "map.0": "phone", "kind": "invalid"}
    )
    assert refused.status_code == 422 and "只能手动加入退订、黑名单或免打扰名单" in refused.text
    assert len(_suppressions(engine)) == 2 and _suppressions(engine, OTHER) == []


# -- the message log ------------------------------------------------------------------------------


def _owner(workspace_id: int) -> Principal:
    return Principal(workspace_id, "user", 1, "boss@example.com", frozenset(), Role.OWNER)


def _fill_the_outbox(engine: Engine) -> None:
    """A campaign's messages, a journey's, and service messages created over days."""
    for name, kind, body in (("双11", "marketing", "双11预售开启"), ("你好", "marketing", "欢迎")):
        create_template(
            engine, workspace_id=STORE, name=name, kind=kind, body=body, actor="mei", now=NOW
        )
        submit_template(engine, workspace_id=STORE, name=name, actor="mei", now=NOW)
        approve_template(engine, workspace_id=STORE, name=name, actor="rui", now=NOW)
    create_campaign(
        engine, workspace_id=STORE, name="双11预热", template="双11",
        audience={"kind": "consenting"}, send_at=None, ends_at=None,
        throttle_per_second=None, budget_yuan=None, now=NOW - timedelta(hours=2),
    )  # fmt: skip
    start_campaign(engine, workspace_id=STORE, name="双11预热", now=NOW - timedelta(hours=2))
    definition = {
        "trigger": {"type": "event", "event": "signup"},
        "reentry": {"policy": "once"},
        "steps": [{"id": "hi", "type": "send", "template": "你好"}],
    }
    hour_ago = NOW - timedelta(hours=1)
    create_journey(engine, workspace_id=STORE, name="欢迎", definition=definition, now=hour_ago)
    activate_journey(engine, workspace_id=STORE, name="欢迎", now=hour_ago)
    assert enrol_contact(engine, workspace_id=STORE, name="欢迎", phone=ZHANG, now=hour_ago)
    assert advance_due(engine, hour_ago)
    for days in range(1, 56):
        send_message(
            engine, principal=_owner(STORE), phone=f"139{days:08d}", body=f"取件码 {days}",
            kind="service", idempotency_key=None, keep=timedelta(days=1),
            now=NOW - timedelta(days=days),
        )  # fmt: skip
    send_message(
        engine, principal=_owner(OTHER), phone=ZHANG, body="另一个工作区的短信", kind="service",
        idempotency_key=None, keep=timedelta(days=1), now=NOW,
    )  # fmt: skip


def _logged_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)">', page)]


def test_the_message_log_filters_pages_and_exports(client: TestClient, engine: Engine) -> None:
    _fill_the_outbox(engine)
    sign_in(client, "ann@example.com")  # an analyst reads and exports, changes nothing
    first = client.get("/messages")
    assert first.status_code == 200, first.text[-2000:]
    assert 'href="/messages"' in first.text  # in the navigation
    ids = _logged_ids(first.text)
    assert len(ids) == 50 and "另一个工作区的短信" not in first.text
    # Newest first by creation time: the campaign's (two hours ago) and the journey's
    # (one hour ago) come before yesterday's service message although written earlier.
    assert "欢迎" in first.text.split('<tr data-id="')[1]
    assert "双11预售开启" in first.text.split('<tr data-id="')[2]
    assert "取件码 1<" in first.text.split('<tr data-id="')[4]
    rest = client.get("/messages", params={"before_id": ids[-1]})
    more = _logged_ids(rest.text)
    assert len(more) == 8 and not set(more) & set(ids) and 'id="next-page"' not in rest.text
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).where(messages.c.workspace_id == STORE)
        ).scalar_one()
    assert total == 58

    campaign = client.get("/messages", params={"campaign": "双11预热"}).text
    assert len(_logged_ids(campaign)) == 2 and "活动：双11预热" in campaign
    journey = client.get("/messages", params={"journey": "欢迎"}).text
    assert len(_logged_ids(journey)) == 1 and "旅程：欢迎" in journey
    phone = client.get("/messages", params={"phone": "13900000003"}).text
    assert len(_logged_ids(phone)) == 1 and "取件码 3<" in phone
    since, until = (_local(NOW - timedelta(days=10, hours=1)), _local(NOW - timedelta(hours=12)))
    window = {"since": since, "until": until, "status": "queued"}
    found = client.get("/messages", params=window).text
    assert re.findall(r"取件码 (\d+)<", found) == [str(d) for d in range(1, 11)]
    assert len(_logged_ids(found)) == 10

    for params, reason, status in (
        ({"campaign": "无此活动"}, "活动「无此活动」不存在", 404),
        ({"since": "昨天"}, "昨天", 422),
        ({"status": "bogus"}, "未知状态 bogus", 422),
        ({"phone": "12345"}, "号码 '12345' 无效", 422),
    ):
        refused = client.get("/messages", params=params)
        assert refused.status_code == status and reason in _problem(refused.text), params

    exported = client.get("/messages/export", params={"format": "csv", "campaign": "双11预热"})
    assert exported.status_code == 200
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("短信ID,手机号,活动") and len(lines) == 3
    assert all("双11预热" in line for line in lines[1:])
    workbook = client.get("/messages/export", params={"format": "xlsx", **window})
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    assert sheet is not None and sheet.max_row == 11  # the header and ten days
    [xlsx_entry, csv_entry] = _audit(engine, "export")  # newest first
    assert csv_entry.detail == {"campaign": "双11预热", "rows": 2, "format": "csv"}
    assert xlsx_entry.detail["rows"] == 10 and xlsx_entry.detail["status"] == "queued"


def _local(moment: datetime) -> str:
    """A ``datetime-local`` field's value in the workspace's zone."""
    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def test_the_message_log_reads_its_pages_from_the_index(client: TestClient, engine: Engine) -> None:
    """Whatever the page or time range, the log walks (workspace, created_at, id)."""
    statements: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM messages" in statement and "ORDER BY" in statement:
            statements.append((statement, parameters))

    [message] = [
        send_message(
            engine, principal=_owner(STORE), phone=LI, body="取件码 1", kind="service",
            idempotency_key=None, keep=timedelta(days=1), now=NOW,
        ).body["id"]
    ]  # fmt: skip
    event.listen(engine, "before_cursor_execute", keep)
    try:
        message_page(engine, workspace_id=STORE, before_id=message, since=NOW - timedelta(days=3))
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    [(statement, parameters)] = statements
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = str(conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all())
        else:
            # Empty tables: a sequential scan or a sort would cost nothing; forbidden, the
            # planner shows the path it takes on a large outbox.
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_sort = off")
            plan = str(conn.exec_driver_sql("EXPLAIN " + statement, parameters).all())
    assert "ix_messages_workspace_id_created_at_id" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


# -- answering a reply ---------------------------------------------------------------------------


def _reply_id(engine: Engine, phone: str = ASKER, workspace_id: int = STORE) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(replies.c.id).where(
                    replies.c.workspace_id == workspace_id, replies.c.phone == phone
                )
            ).scalar_one()
        )


def _sent(engine: Engine, workspace_id: int = STORE) -> list[tuple[str, str, str, str | None]]:
    m = messages.c
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(m.phone, m.kind, m.text, m.block_reason)
                .where(m.workspace_id == workspace_id)
                .order_by(m.id)
            )
        ]


def test_a_reply_is_answered_through_the_outbox(client: TestClient, engine: Engine) -> None:
    csrf = sign_in(client, "mei@example.com")
    inbox = client.get("/inbox").text
    assert f'data-reply="{_reply_id(engine)}"' in inbox and "store " + QUESTION in inbox
    nonce = re.findall(r'name="nonce" value="([^"]+)"', inbox)[0]
    answer = {"csrf_token": csrf, "reply": str(_reply_id(engine)), "nonce": nonce}

    sent = client.post(
        "/inbox/answer", data=answer | {"body": "周末照常营业"}, follow_redirects=False
    )
    assert sent.status_code == 303, sent.text[-2000:]
    assert "回复已进入发送队列。" in client.get(sent.headers["location"]).text
    # Sent twice (a double click): the second is the first's answer, nothing more.
    client.post("/inbox/answer", data=answer | {"body": "周末照常营业"})
    assert _sent(engine) == [(ASKER, "service", "【星河商城】周末照常营业", None)]
    [entry] = _audit(engine, "message.send")
    assert "mei" in entry.actor and entry.detail["phone"] == ASKER
    assert entry.detail["kind"] == "service" and entry.detail["status"] == "queued"

    for body, reason in (("   ", "请填写回复内容"), ("长" * 501, "最多 500 个字符")):
        refused = client.post("/inbox/answer", data=answer | {"body": body})
        assert refused.status_code == 422 and reason in _problem(refused.text)
    assert len(_sent(engine)) == 1

    # The gate holds an answer like any message: a blacklisted number gets nothing, and
    # the log keeps why.
    upsert_contacts(
        engine, workspace_id=STORE, records=[{"phone": ASKER}], consent_source=None,
        list_name=None, now=NOW,
    )  # fmt: skip
    client.post(
        "/contacts/suppress", data={"csrf_token": csrf, "phone": ASKER, "kind": "blacklist"}
    )
    fresh = re.findall(r'name="nonce" value="([^"]+)"', client.get("/inbox").text)[0]
    blocked = client.post("/inbox/answer", data=answer | {"nonce": fresh, "body": "在吗"})
    assert blocked.status_code == 200 and "回复未发送" in blocked.text
    assert _sent(engine)[-1][3] == "blacklist"


# -- one's own password ------------------------------------------------------------------------


def test_a_password_change_keeps_this_session_and_ends_the_others(
    client: TestClient, engine: Engine
) -> None:
    app = client.app
    with TestClient(app, base_url="https://testserver") as laptop:
        sign_in(laptop, "mei@example.com")
        csrf = sign_in(client, "mei@example.com")
        change = {"csrf_token": csrf, "current": PASSWORD, "new": "a new horse battery"}

        for fields, reason in (
            ({"current": "not my password"}, "当前密码不正确"),
            ({"confirm": "something else!"}, "两次输入的新密码不一致"),
            ({"new": "short", "confirm": "short"}, "密码须为 10–256 个字符"),
            ({"new": PASSWORD, "confirm": PASSWORD}, "新密码不能与当前密码相同"),
        ):
            form = change | {"confirm": change["new"]} | fields
            refused = client.post("/account/password", data=form)
            assert refused.status_code == 422 and reason in _problem(refused.text), fields
        assert laptop.get("/account").status_code == 200  # nothing changed yet
        assert _audit(engine, "user.password") == []

        changed = client.post(
            "/account/password", data=change | {"confirm": change["new"]}, follow_redirects=False
        )
        assert changed.status_code == 303, changed.text[-2000:]
        assert "其他 1 个登录已退出" in client.get(changed.headers["location"]).text
        assert client.get("/contacts").status_code == 200  # this session stays
        assert (
            laptop.get("/account", follow_redirects=False).headers["location"].startswith("/login")
        )
        [entry] = _audit(engine, "user.password")
        assert entry.target == "user:mei@example.com" and entry.detail == {"sessions_ended": 1}

    with TestClient(app, base_url="https://testserver") as again:
        old = again.post(
            "/login",
            data={"workspace": "store", "email": "mei@example.com", "password": PASSWORD},
        )
        assert old.status_code == 401
        new = again.post(
            "/login",
            data={"workspace": "store", "email": "mei@example.com", "password": change["new"]},
            follow_redirects=False,
        )
        assert new.status_code == 303
    # The other workspace's mei is another account: her password is unchanged.
    sign_in(client, "mei@example.com", workspace="other")


# -- roles, CSRF and workspaces --------------------------------------------------------------------


def _changes(
    engine: Engine, phone: str, workspace_id: int = STORE
) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/contacts/edit", _edit_form(phone=phone, name="改了")),
        ("/contacts/tags/add", {"phone": phone, "tags": "新标签"}),
        ("/contacts/tags/remove", {"phone": phone, "tag": "vip"}),
        ("/contacts/consent/grant", {"phone": phone, "purpose": "service", "source": "x"}),
        ("/contacts/consent/withdraw", {"phone": phone, "purpose": "marketing"}),
        ("/inbox/answer", {"reply": str(_reply_id(engine, workspace_id=workspace_id)),
                           "body": "你好", "nonce": "n"}),
    ]  # fmt: skip


UPLOADS = ("/contacts/events/import", "/contacts/suppressions/import")
AUDITED = (
    "contact.update", "contact.tag", "consent.grant", "consent.revoke", "message.send",
    "events.import", "suppression.add", "user.password",
)  # fmt: skip


def _nothing_changed(engine: Engine) -> None:
    for workspace_id in (STORE, OTHER):
        for action in AUDITED:
            assert _audit(engine, action, workspace_id) == [], action
        assert _sent(engine, workspace_id) == []
        assert _events(engine, workspace_id) == [] and _suppressions(engine, workspace_id) == []
        zhang = get_contact(engine, workspace_id=workspace_id, phone=ZHANG)
        assert zhang.name == "张三" and zhang.tags == ["vip"]
        assert [c.purpose for c in zhang.consents] == ["marketing"]
        assert zhang.consents[0].revoked_at is None


def _upload(client: TestClient, base: str, csrf: str | None) -> Any:
    data = {} if csrf is None else {"csrf_token": csrf}
    return client.post(
        base,
        data=data,
        files={"file": ("x.csv", io.BytesIO(b"phone,type,time\n13800138000,purchase,2026-1-1\n"))},
        follow_redirects=False,
    )


@pytest.mark.parametrize("email", ["ann@example.com", "rui@example.com"])
def test_read_only_roles_change_nothing(client: TestClient, engine: Engine, email: str) -> None:
    csrf = sign_in(client, email)
    for path, fields in _changes(engine, ZHANG):
        answer = client.post(path, data={"csrf_token": csrf, **fields})
        assert answer.status_code == 403, (path, answer.text[-1000:])
        assert "没有权限" in answer.text
    for base in UPLOADS:
        assert _upload(client, base, csrf).status_code == 403
        assert client.get(base).status_code == 403
    assert client.get("/contacts/edit", params={"phone": ZHANG}).status_code == 403
    _nothing_changed(engine)


def test_changes_without_the_csrf_token_are_refused(client: TestClient, engine: Engine) -> None:
    sign_in(client, "boss@example.com")
    password = {"current": PASSWORD, "new": "a new horse battery", "confirm": "a new horse battery"}
    for path, fields in [*_changes(engine, ZHANG), ("/account/password", password)]:
        for token in ({}, {"csrf_token": "forged"}):
            answer = client.post(path, data={**fields, **token})
            assert answer.status_code == 403, (path, answer.text[-1000:])
            assert "CSRF" in answer.text
    for base in UPLOADS:
        assert _upload(client, base, None).status_code == 403
    _nothing_changed(engine)


def test_another_workspaces_records_are_not_found(client: TestClient, engine: Engine) -> None:
    upsert_contacts(
        engine, workspace_id=STORE, records=[{"phone": "13900139000", "name": "只在 store"}],
        consent_source=None, list_name=None, now=NOW,
    )  # fmt: skip
    record_reply(
        engine, workspace_id=STORE, channel_id=None, now=NOW, keywords=None,
        reply=InboundReply("+8613900139000", "1069", "", "只在 store 的回复", NOW),
    )  # fmt: skip
    csrf = sign_in(client, "boss@example.com")
    store_job = _upload(client, UPLOADS[0], csrf).headers["location"].split("job=")[1]
    csrf = sign_in(client, "boss@example.com", workspace="other")
    for path, fields in _changes(engine, "13900139000", workspace_id=STORE):
        if path == "/inbox/answer":
            fields["reply"] = str(_reply_id(engine, "+8613900139000"))
        answer = client.post(path, data={"csrf_token": csrf, **fields})
        assert answer.status_code == 404, (path, answer.text[-1000:])
    assert client.get("/contacts/edit", params={"phone": "13900139000"}).status_code == 404
    for suffix in ("/map", "/status", "/rejects"):
        assert client.get(UPLOADS[0] + suffix, params={"job": store_job}).status_code == 404
    refused = client.post(
        UPLOADS[0] + "/run", data={"csrf_token": csrf, "job": store_job, "map.0": "phone"}
    )
    assert refused.status_code == 404
    assert "只在 store" not in client.get("/inbox").text
    assert client.get("/messages", params={"phone": "13900139000"}).status_code == 200
    # Nothing was created in "other" (a consent grant would otherwise make the contact).
    assert client.get("/contacts/view", params={"phone": "13900139000"}).status_code == 404
    _nothing_changed(engine)


def test_the_new_pages_speak_english_on_request(client: TestClient, engine: Engine) -> None:
    sign_in(client, "boss@example.com")
    for path, words in (
        ("/messages", "Message log"),
        ("/account", "Change password"),
        ("/contacts/edit", "Custom attributes"),
        ("/contacts/events/import", "Import events and orders"),
        ("/contacts/suppressions/import", "Import a suppression list"),
        ("/inbox", "Reply to"),
    ):
        params = {"lang": "en"} | ({"phone": LI} if path == "/contacts/edit" else {})
        answer = client.get(path, params=params)
        assert answer.status_code == 200 and words in answer.text, path
        assert '<html lang="en">' in answer.text
