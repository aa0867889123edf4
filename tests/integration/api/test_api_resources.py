"""Each resource over HTTP, set up and checked through the same service functions the
CLI uses: contacts, consent, suppression, events, segments, templates, campaigns,
channels and provider callbacks, reports, exports and webhooks."""

from __future__ import annotations

import csv
import io

from api_support import assert_error
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from echelon.audience.contacts import get_contact
from echelon.audience.suppression import list_suppressions
from echelon.db.outbox import messages, receipts, replies
from echelon.db.tables import consents, contacts, events
from echelon.workspaces.service import Workspace


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _actions(client: TestClient) -> list[str]:
    return [e["action"] for e in client.get("/api/v1/audit").json()["entries"]]


def test_contacts_upsert_get_search_and_erase(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    one = client.put(
        "/api/v1/contacts/139-0013-9000",
        json={"name": "李四", "gender": "女", "tags": ["VIP"], "attributes": {"等级": "金卡"}},
        headers=owner,
    )
    assert one.status_code == 200, one.text
    assert one.json()["imported"] == 1
    again = client.put("/api/v1/contacts/13900139000", json={"city": "深圳"}, headers=owner)
    assert again.json()["updated"] == 1
    shown = client.get("/api/v1/contacts/13900139000").json()
    assert (shown["name"], shown["gender"], shown["city"]) == ("李四", "female", "深圳")
    assert shown["tags"] == ["VIP"] and shown["attributes"] == {"等级": "金卡"}
    bad = client.put("/api/v1/contacts/12345", json={}, headers=owner)
    assert_error(bad, 422, "invalid_input")
    found = client.get("/api/v1/contacts", params={"q": "李"}).json()
    assert [c["phone"] for c in found["contacts"]] == ["+8613900139000"]
    tagged = client.get("/api/v1/contacts", params={"tag": "VIP"}).json()["contacts"]
    assert len(tagged) == 1
    assert client.get("/api/v1/contacts", params={"q": "%"}).json()["contacts"] == []
    client.post(
        "/api/v1/suppressions", json={"phone": "13900139000", "kind": "opt_out"}, headers=owner
    )
    erased = client.delete("/api/v1/contacts/13900139000", headers=owner)
    assert erased.status_code == 200 and erased.json()["erased"]["suppressions_kept"] == 1
    assert_error(client.get("/api/v1/contacts/13900139000"), 404)
    assert [s.phone for s in list_suppressions(engine, workspace_id=store.id)] == ["+8613900139000"]
    assert "contact.erase" in _actions(client)


def test_a_bulk_upsert_reports_bad_records_and_takes_the_good_ones(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    records = [{"phone": f"1370013{i:04d}", "name": f"客户{i}"} for i in range(300)]
    records[7]["phone"] = "12345"
    records[9] |= {"gender": "未说"}
    records[11] |= {"consent": True}
    records.append({"phone": "13700130000", "name": "重复"})
    without_source = client.post("/api/v1/contacts/batch", json={"records": records}, headers=owner)
    assert_error(without_source, 422)
    answer = client.post(
        "/api/v1/contacts/batch",
        json={"records": records, "consent_source": "web_form", "list_name": "双11"},
        headers=owner,
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [r["index"] for r in report["rejected"]] == [7, 9]
    assert report["imported"] == 298 and report["duplicates"] == 1
    assert report["consent_granted"] == 1 and report["list_members_added"] == 298
    assert get_contact(engine, workspace_id=store.id, phone="13700130011").consents
    assert not get_contact(engine, workspace_id=store.id, phone="13700130012").consents
    assert "consent.grant" in _actions(client)
    too_many = {"records": [{"phone": "13700130000"}] * 10_001}
    assert_error(client.post("/api/v1/contacts/batch", json=too_many, headers=owner), 422)


def test_consent_and_suppression_changes_are_applied_and_audited(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    path = "/api/v1/contacts/13900139000/consent/marketing"
    granted = client.put(path, json={"source": "web_form", "proof": "ip=1.2.3.4"}, headers=owner)
    assert granted.json() == {"granted": True}
    assert client.put(path, json={"source": "web_form"}, headers=owner).json() == {"granted": False}
    assert client.delete(path, params={"source": "hotline"}, headers=owner).json() == {
        "revoked": True
    }
    assert_error(
        client.put(path.replace("marketing", "spam"), json={"source": "x"}, headers=owner), 422
    )
    added = client.post(
        "/api/v1/suppressions",
        json={"phone": "13900139000", "kind": "dnc", "reason": "工信部名单"},
        headers=owner,
    )
    assert added.json() == {"added": True}
    listed = client.get("/api/v1/suppressions", params={"kind": "dnc"}).json()
    assert [s["reason"] for s in listed] == ["工信部名单"]
    assert client.delete("/api/v1/suppressions/dnc/13900139000", headers=owner).status_code == 200
    assert_error(client.delete("/api/v1/suppressions/dnc/13900139000", headers=owner), 404)
    assert {"consent.grant", "consent.revoke", "suppression.add", "suppression.remove"} <= set(
        _actions(client)
    )


def test_events_single_and_batched_are_stored_once(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    purchase = {
        "phone": "13900139000", "type": "购买", "occurred_at": "2026-11-11 20:00:00",
        "amount": "199.50", "order_id": "A1", "event_id": "evt-1",
    }  # fmt: skip
    first = client.post("/api/v1/events", json=purchase, headers=owner)
    assert first.status_code == 200, first.text
    assert first.json()["imported"] == 1 and first.json()["contacts_created"] == 1
    assert client.post("/api/v1/events", json=purchase, headers=owner).json()["duplicates"] == 1
    assert_error(
        client.post("/api/v1/events", json=purchase | {"type": "Bad Type!"}, headers=owner), 422
    )
    batch = [
        {"phone": "13800138000", "type": "cart_add", "occurred_at": f"2026-11-1{i}T10:00+08:00"}
        for i in range(3)
    ] + [{"phone": "1", "type": "cart_add", "occurred_at": "2026-11-11T10:00+08:00"}]
    answer = client.post("/api/v1/events/batch", json={"records": batch}, headers=owner).json()
    assert answer["imported"] == 3 and [r["index"] for r in answer["rejected"]] == [3]
    with engine.connect() as conn:
        amount = conn.execute(select(events.c.amount_fen).where(events.c.order_id == "A1")).scalar()
    assert amount == 19950 and _count(engine, events) == 4


def test_templates_preview_lint_and_review(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    body = {"name": "生日", "kind": "marketing", "body": "{{ name }}生日快乐，送您优惠券"}
    created = client.post("/api/v1/templates", json=body, headers=owner)
    assert created.status_code == 201 and created.json()["variables"] == ["name"]
    assert_error(client.post("/api/v1/templates", json=body, headers=owner), 409, "template_exists")
    broken = body | {"name": "坏", "body": "{{ name "}
    assert_error(client.post("/api/v1/templates", json=broken, headers=owner), 422)
    client.put("/api/v1/contacts/13900139000", json={"name": "王五"}, headers=owner)
    preview = client.post(
        "/api/v1/templates/生日/preview", json={"phone": "13900139000"}, headers=owner
    ).json()
    assert preview["text"].startswith("【星河商城】王五生日快乐")
    assert preview["count"]["parts"] == 1 and preview["cost"]
    assert client.get("/api/v1/templates/生日/lint").json()["blocking"] == []
    edited = client.patch(
        "/api/v1/templates/生日", json={"body": "{{ name }}生日快乐"}, headers=owner
    )
    assert edited.json()["changed"] == ["body"]
    assert (
        client.post("/api/v1/templates/生日/submit", headers=owner).json()["template"][
            "review_status"
        ]
        == "pending"
    )
    rejected = client.post("/api/v1/templates/生日/reject", json={"reason": "太短"}, headers=owner)
    assert rejected.json()["template"]["review_status"] == "rejected"
    history = client.get("/api/v1/templates/生日/history").json()
    assert [h["action"] for h in history] == ["created", "edited", "submitted", "rejected"]
    assert [
        t["name"] for t in client.get("/api/v1/templates", params={"status": "approved"}).json()
    ] == ["t"]


def test_a_campaign_runs_through_the_api(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/campaigns",
        json={"name": "双11", "template": "t", "audience": {"kind": "all"}, "budget_yuan": "500"},
        headers=owner,
    )
    assert created.status_code == 201, created.text
    assert created.json()["budget_yuan"] == "500"
    bad_audience = {"name": "x", "template": "t", "audience": {"kind": "tag"}}
    assert_error(client.post("/api/v1/campaigns", json=bad_audience, headers=owner), 422)
    naive = {"name": "x", "template": "t", "send_at": "2026-11-11T20:00:00"}
    assert_error(client.post("/api/v1/campaigns", json=naive, headers=owner), 422)
    preview = client.post("/api/v1/campaigns/双11/preview", params={"samples": 1}, headers=owner)
    assert preview.json()["audience"] == 1 and len(preview.json()["samples"]) == 1
    assert _count(engine, messages) == 0
    started = client.post("/api/v1/campaigns/双11/start", headers=owner).json()
    assert started["planned"] + sum(started["blocked"].values()) == 1
    assert client.post("/api/v1/campaigns/双11/pause", headers=owner).json()["action"] == "pause"
    assert client.post("/api/v1/campaigns/双11/resume", headers=owner).status_code == 200
    assert_error(client.post("/api/v1/campaigns/双11/start", headers=owner), 409, "campaign_state")
    assert client.post("/api/v1/campaigns/双11/cancel", headers=owner).status_code == 200
    status = client.get("/api/v1/campaigns/双11").json()
    assert status["campaign"]["status"] == "cancelled"
    names = [c["name"] for c in client.get("/api/v1/campaigns").json()]
    assert names == ["双11", "c"]
    assert {"campaign.start", "campaign.cancel"} <= set(_actions(client))
    report = client.get("/api/v1/reports/campaigns/双11", params={"by": "carrier"}).json()
    assert report["campaign"] == "双11" and "total" in report
    for reference in ("²", "9" * 30):  # digits a service would read as an id
        assert_error(client.get(f"/api/v1/reports/campaigns/{reference}"), 404)


def test_channels_never_show_a_password_and_callbacks_need_the_channel_token(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/channels",
        json={
            "name": "备用",
            "config": {
                "host": "smsc.example.com",
                "port": 2775,
                "system_id": "shop",
                "password": "s3cret",
            },
            "carriers": ["china_mobile"],
        },
        headers=owner,
    )
    assert created.status_code == 201, created.text
    # The same SMSC account again: a second channel would take the first one's receipts.
    account = {"host": "SMSC.example.com", "port": 2775, "system_id": "shop", "password": "x"}
    twin = client.post("/api/v1/channels", json={"name": "双", "config": account}, headers=owner)
    assert "已使用短信中心账号" in assert_error(twin, 409, "channel_account_in_use")["message"]
    for shown in (
        created.text,
        client.get("/api/v1/channels").text,
        client.get("/api/v1/channels/备用").text,
    ):
        assert "s3cret" not in shown
    edited = client.patch(
        "/api/v1/channels/备用", json={"config": {"password": "n3w"}, "weight": 3}, headers=owner
    )
    assert edited.json()["weight"] == 3 and "n3w" not in edited.text
    assert client.post("/api/v1/channels/备用/disable", headers=owner).json()["enabled"] is False
    assert_error(client.post("/api/v1/channels/备用", json={}, headers=owner), 405)
    issued = client.post("/api/v1/channels/ch/callback-token", headers=owner).json()
    token = {"X-Callback-Token": issued["token"]}
    receipt = {"receipts": [{"provider_id": "p-1", "status": "delivered"}]}
    assert_error(client.post(issued["receipts_url"], json=receipt), 401, "invalid_callback_token")
    assert_error(
        client.post(issued["receipts_url"], json=receipt, headers={"X-Callback-Token": "ec_x"}), 401
    )
    other = created.json()["id"]
    assert_error(
        client.post(f"/api/v1/callbacks/{other}/receipts", json=receipt, headers=token), 401
    )
    assert client.post(issued["receipts_url"], json=receipt, headers=token).json() == {
        "received": 1,
        "new": 1,
    }
    assert client.post(issued["receipts_url"], json=receipt, headers=token).json()["new"] == 0
    reply = {"source": "13800138000", "destination": "106900001", "text": "TD"}
    outcome = client.post(issued["replies_url"], json=reply, headers=token).json()
    assert outcome["opted_out"] is True
    assert _count(engine, receipts) == 1 and _count(engine, replies) == 1
    assert [s.kind for s in list_suppressions(engine, workspace_id=store.id)] == ["opt_out"]
    revoked = client.get("/api/v1/audit", params={"action": "consent.revoke"}).json()["entries"]
    assert revoked[0]["actor"] == f"channel:{issued['receipts_url'].split('/')[4]}"
    renewed = client.post("/api/v1/channels/ch/callback-token", headers=owner).json()
    assert_error(client.post(issued["receipts_url"], json=receipt, headers=token), 401)
    assert renewed["token"] != issued["token"]


def test_segments_count_and_list_members(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    client.put("/api/v1/contacts/13900139000", json={"tags": ["VIP"]}, headers=owner)
    definition = {"kind": "tag", "tags": ["VIP"]}
    created = client.post(
        "/api/v1/segments", json={"name": "贵宾", "definition": definition}, headers=owner
    )
    assert created.status_code == 201, created.text
    assert_error(
        client.post(
            "/api/v1/segments", json={"name": "坏", "definition": {"kind": "nope"}}, headers=owner
        ),
        422,
        "invalid_segment",
    )
    assert client.get("/api/v1/segments/贵宾/count").json()["total"] == 1
    assert client.get(f"/api/v1/segments/{created.json()['id']}").json()["name"] == "贵宾"
    members = client.get("/api/v1/segments/贵宾/members").json()["members"]
    assert [m["phone"] for m in members] == ["+8613900139000"]
    assert (
        client.post(
            "/api/v1/segments/count", json={"definition": definition}, headers=owner
        ).json()["total"]
        == 1
    )
    renamed = client.patch("/api/v1/segments/贵宾", json={"name": "VIP"}, headers=owner)
    assert renamed.json()["name"] == "VIP"
    preset = client.post("/api/v1/segments/from-preset", json={"preset": "dormant"}, headers=owner)
    assert preset.status_code == 201 and preset.json()["preset"] == "dormant"
    assert_error(client.get("/api/v1/segments/" + "9" * 30), 404)
    assert_error(client.get("/api/v1/segments/²"), 404)  # a digit to isdigit, not to int


def test_reports_exports_and_webhooks(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    assert "today" in client.get("/api/v1/reports/dashboard").json()
    assert client.get("/api/v1/reports/channels", params={"hours": 3}).json() == []
    assert client.get("/api/v1/reports/alerts").json() == []
    exported = client.get("/api/v1/exports/contacts")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][0] == "phone" and rows[1][0] == "+8613800138000"
    xlsx = client.get("/api/v1/exports/messages", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert_error(client.get("/api/v1/exports/messages", params={"campaign": "无"}), 404)
    assert [
        e["detail"]["format"]
        for e in client.get("/api/v1/audit", params={"action": "export"}).json()["entries"]
    ] == ["xlsx", "csv"]
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "https://crm.example.com/hook", "events": ["reply"]},
        headers=owner,
    )
    assert hook.status_code == 201 and len(hook.json()["secret"]) == 48
    hook_id = hook.json()["id"]
    assert client.post(f"/api/v1/webhooks/{hook_id}/test", headers=owner).status_code == 200
    assert client.get("/api/v1/webhooks/deliveries").json()[0]["event"] == "test"
    assert "secret" not in client.get("/api/v1/webhooks").json()[0]
    assert client.delete(f"/api/v1/webhooks/{hook_id}", headers=owner).status_code == 200
    assert_error(client.delete(f"/api/v1/webhooks/{hook_id}", headers=owner), 404)
    assert _count(engine, consents) == 1 and _count(engine, contacts) == 1
