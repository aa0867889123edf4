"""POST /api/v1/messages: one service or verification message through the gate, an
Idempotency-Key honoured for a day; and the message log."""

from __future__ import annotations

from datetime import timedelta

from api_support import NOW, assert_error, bearer, key
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from echelon.access.models import Principal
from echelon.access.sending import IdempotencyKeyReused, send_message
from echelon.audience.suppression import add_suppression
from echelon.db.access import audit_log, idempotency_keys
from echelon.db.outbox import messages
from echelon.workspaces.service import Workspace

ORDER = {"phone": "13900139000", "body": "您的订单已发货，单号 SF123", "kind": "service"}


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())


def test_a_service_message_is_queued_signed_and_audited(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    secret = key(engine, store.id, "messages:send", "messages:read")
    answer = client.post("/api/v1/messages", json=ORDER, headers=bearer(secret))
    assert answer.status_code == 202, answer.text
    sent = answer.json()
    assert sent["status"] == "queued" and sent["phone"] == "+8613900139000"
    assert sent["text"] == "【星河商城】您的订单已发货，单号 SF123"
    assert sent["parts"] == 1 and sent["cost_yuan"] == "0.0600"
    with engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == sent["id"])).one()
        audited = conn.execute(select(audit_log).where(audit_log.c.action == "message.send")).one()
    assert row.status == "queued" and row.kind == "service" and row.campaign_id is None
    # Where the number is, recorded on the message for routing and reports.
    assert (row.carrier, row.province) == ("china_mobile", "上海市")
    assert audited.target == f"message:{sent['id']}" and audited.actor.startswith("key:")
    shown = client.get(f"/api/v1/messages/{sent['id']}", headers=bearer(secret)).json()
    assert shown["status"] == "queued" and shown["cost_yuan"] == "0.0600"


def test_the_same_idempotency_key_sends_once_and_answers_alike(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    headers = bearer(key(engine, store.id, "messages:send")) | {"Idempotency-Key": "order-42"}
    first = client.post("/api/v1/messages", json=ORDER, headers=headers)
    again = client.post("/api/v1/messages", json=ORDER, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _count(engine) == 1
    other = client.post("/api/v1/messages", json=ORDER | {"body": "另一条"}, headers=headers)
    assert_error(other, 409, "idempotency_key_reused")
    fresh = client.post(
        "/api/v1/messages", json=ORDER, headers=headers | {"Idempotency-Key": "order-43"}
    )
    assert fresh.status_code == 202 and fresh.json()["id"] != first.json()["id"]
    assert _count(engine) == 2


def test_an_idempotency_key_is_kept_a_day_then_forgotten(engine: Engine, store: Workspace) -> None:
    sender = Principal(store.id, "key", 1, "orders", frozenset({"messages:send"}))

    def send(at_hours: float) -> int:
        return int(
            send_message(
                engine, principal=sender, phone="13900139000", body="验证码 1234",
                kind="verification", idempotency_key="login-1", keep=timedelta(hours=24),
                now=NOW + timedelta(hours=at_hours),
            ).body["id"]
        )  # fmt: skip

    first = send(0)
    assert send(23.9) == first
    later = send(24.1)
    assert later != first
    try:
        send_message(
            engine, principal=sender, phone="13900139001", body="验证码 1234",
            kind="verification", idempotency_key="login-1", keep=timedelta(hours=24),
            now=NOW + timedelta(hours=25),
        )  # fmt: skip
    except IdempotencyKeyReused:
        pass
    else:
        raise AssertionError("a key reused for another request within its day must be refused")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one() == 1


def test_the_gate_blocks_a_suppressed_number_with_its_reason(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    add_suppression(
        engine, workspace_id=store.id, phone=ORDER["phone"], kind="blacklist",
        source="complaint", reason=None, now=NOW,
    )  # fmt: skip
    answer = client.post(
        "/api/v1/messages", json=ORDER, headers=bearer(key(engine, store.id, "messages:send"))
    )
    assert answer.status_code == 202
    assert answer.json()["status"] == "blocked" and answer.json()["block_reason"]


def test_bad_sends_are_refused_and_write_nothing(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    headers = bearer(key(engine, store.id, "messages:send"))
    marketing = client.post("/api/v1/messages", json=ORDER | {"kind": "marketing"}, headers=headers)
    assert assert_error(marketing, 422, "invalid_input")["field"] == "kind"
    assert_error(
        client.post("/api/v1/messages", json=ORDER | {"phone": "12345"}, headers=headers), 422
    )
    assert_error(
        client.post("/api/v1/messages", json={"phone": "13900139000"}, headers=headers), 422
    )
    assert_error(
        client.post(
            "/api/v1/messages",
            content=b"{not json",
            headers=headers | {"content-type": "application/json"},
        ),
        422,
    )
    assert _count(engine) == 0


def test_the_message_log_filters_and_pages(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    headers = bearer(key(engine, store.id, "messages:send", "messages:read"))
    ids = [
        client.post(
            "/api/v1/messages", json=ORDER | {"phone": f"1390013900{i}", "body": f"单号 {i}"},
            headers=headers,
        ).json()["id"]
        for i in range(5)
    ]  # fmt: skip
    first = client.get("/api/v1/messages", params={"limit": 2}, headers=headers).json()
    assert [m["id"] for m in first["messages"]] == ids[:-3:-1]
    rest = client.get(
        "/api/v1/messages", params={"limit": 10, "before_id": first["next_before_id"]},
        headers=headers,
    ).json()  # fmt: skip
    assert [m["id"] for m in rest["messages"]] == ids[2::-1] and rest["next_before_id"] is None
    one = client.get("/api/v1/messages", params={"phone": "13900139003"}, headers=headers).json()
    assert [m["id"] for m in one["messages"]] == [ids[3]]
    queued = client.get(
        "/api/v1/messages", params=[("status", "queued"), ("status", "delivered")], headers=headers
    ).json()
    assert len(queued["messages"]) == 5
    none = client.get("/api/v1/messages", params={"status": "delivered"}, headers=headers).json()
    assert none["messages"] == []
    assert_error(
        client.get("/api/v1/messages", params={"campaign": "无此活动"}, headers=headers), 404
    )
    assert_error(client.get("/api/v1/messages", params={"status": "bogus"}, headers=headers), 422)
    assert_error(client.get("/api/v1/messages/999999", headers=headers), 404, "message_not_found")
