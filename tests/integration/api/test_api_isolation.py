"""Tenant isolation: a user of workspace A, holding every permission, aims every
endpoint of the API at workspace B's identifiers. Each answers exactly as it does for
an identifier that exists nowhere (404, or for an upsert, a record of A's own), no
list shows anything of B, and not one row of B changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_support import NOW, api_client, key, sign_in, user
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select

from echelon.access.models import Principal
from echelon.access.sending import send_message
from echelon.access.service import create_key, issue_callback_token
from echelon.analytics.webhooks import add_webhook
from echelon.audience.consent import grant_consent
from echelon.audience.suppression import add_suppression
from echelon.campaigns.service import create_campaign
from echelon.channels.smpp import SmppConfig
from echelon.content.review import submit_template
from echelon.content.templates import create_template
from echelon.db.schema import metadata
from echelon.dispatch.channel_admin import add_channel
from echelon.segments.service import create_segment
from echelon.workspaces.service import create_workspace, update_settings

PHONE = "13812345678"
MARKERS = (
    "8613812345678",
    "机密模板",
    "机密活动",
    "机密通道",
    "机密分群",
    "victim.example",
    "机密密钥",
)
# Identifiers that exist in no workspace: what B's must be indistinguishable from.
NOWHERE = {
    "phone": "13700000001",
    "name": "无此名称",
    "segment": "无此分群",
    "key_id": "987654321",
    "message_id": "987654321",
    "webhook_id": "987654321",
    "channel_id": "987654321",
    "purpose": "marketing",
    "kind": "opt_out",
}
# A minimal valid body for each operation that takes one.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("put", "/api/v1/contacts/{phone}"): {"name": "改名"},
    ("put", "/api/v1/contacts/{phone}/consent/{purpose}"): {"source": "attack"},
    ("patch", "/api/v1/templates/{name}"): {"body": "改过的正文"},
    ("post", "/api/v1/templates/{name}/preview"): {"phone": PHONE},
    ("post", "/api/v1/templates/{name}/approve"): {},
    ("post", "/api/v1/templates/{name}/reject"): {"reason": "x"},
    ("patch", "/api/v1/segments/{segment}"): {"name": "改名"},
    ("patch", "/api/v1/channels/{name}"): {"weight": 9},
    ("post", "/api/v1/callbacks/{channel_id}/receipts"): {
        "receipts": [{"provider_id": "p", "status": "delivered"}]
    },
    ("post", "/api/v1/callbacks/{channel_id}/replies"): {"source": PHONE, "text": "TD"},
}
# Upserts keyed by phone: aimed at B's number they make or change A's own contact.
OWN_RECORD = {
    ("put", "/api/v1/contacts/{phone}"),
    ("put", "/api/v1/contacts/{phone}/consent/{purpose}"),
}
# Creations and sign-in take no identifier: they can only ever act in A.
UNIDENTIFIED_WRITES = {
    ("post", "/api/v1/session"), ("delete", "/api/v1/session"), ("post", "/api/v1/users"),
    ("post", "/api/v1/keys"), ("post", "/api/v1/contacts/batch"), ("post", "/api/v1/suppressions"),
    ("post", "/api/v1/events"), ("post", "/api/v1/events/batch"), ("post", "/api/v1/segments"),
    ("post", "/api/v1/segments/from-preset"), ("post", "/api/v1/segments/count"),
    ("post", "/api/v1/templates"), ("post", "/api/v1/campaigns"), ("post", "/api/v1/messages"),
    ("post", "/api/v1/webhooks"), ("post", "/api/v1/channels"),
}  # fmt: skip


def victim(engine: Engine) -> tuple[int, dict[str, str]]:
    """Workspace B, with one of everything: its id, and its identifier for each path
    parameter."""
    b, _ = create_workspace(engine, slug="victim", name="B")
    update_settings(engine, workspace_id=b.id, signature="机密店铺")
    grant_consent(
        engine, workspace_id=b.id, phone=PHONE, purpose="marketing", source="web", proof=None,
        now=NOW,
    )  # fmt: skip
    add_suppression(
        engine, workspace_id=b.id, phone=PHONE, kind="opt_out", source="reply", reason=None,
        now=NOW,
    )  # fmt: skip
    create_template(
        engine, workspace_id=b.id, name="机密模板", kind="service", body="您的订单已发货",
        actor="b", now=NOW,
    )  # fmt: skip
    submit_template(engine, workspace_id=b.id, name="机密模板", actor="b", now=NOW)
    create_campaign(
        engine, workspace_id=b.id, name="机密活动", template="机密模板", audience={"kind": "all"},
        send_at=None, ends_at=None, throttle_per_second=None, budget_yuan=None, now=NOW,
    )  # fmt: skip
    channel = add_channel(
        engine, workspace_id=b.id, name="机密通道",
        config=SmppConfig(host="10.0.0.1", port=2775, system_id="b", password=SecretStr("pw")),
        carriers=["all"], weight=1, priority=0, now=NOW,
    )  # fmt: skip
    issue_callback_token(engine, workspace_id=b.id, channel="机密通道", actor="b", now=NOW)
    segment = create_segment(
        engine, workspace_id=b.id, name="机密分群", definition={"kind": "tag", "tags": ["VIP"]},
        now=NOW,
    )  # fmt: skip
    webhook, _ = add_webhook(engine, workspace_id=b.id, url="https://victim.example/hook", now=NOW)
    created = create_key(
        engine, workspace_id=b.id, name="机密密钥", scopes=["messages:send"],
        rate_per_minute=None, created_by="b", holder=None, now=NOW,
    )  # fmt: skip
    sender = Principal(b.id, "key", created.key.id, "机密密钥", frozenset({"messages:send"}))
    sent = send_message(
        engine, principal=sender, phone="13812345679", body="验证码 1234",
        kind="verification", idempotency_key="b-1", keep=NOW - NOW, now=NOW,
    )  # fmt: skip
    return b.id, {
        "phone": PHONE,
        "segment": str(segment.id),
        "key_id": str(created.key.id),
        "message_id": str(sent.body["id"]),
        "webhook_id": str(webhook.id),
        "channel_id": str(channel.id),
        "purpose": "marketing",
        "kind": "opt_out",
    }


def _name_of(path: str) -> str:
    if (
        path.startswith(("/api/v1/templates", "/api/v1/reports"))
        and "reports/campaigns" not in path
    ):
        return "机密模板"
    if path.startswith("/api/v1/channels"):
        return "机密通道"
    return "机密活动"


def _b_rows(engine: Engine, workspace_id: int) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            table.name: sorted(
                (
                    tuple(row)
                    for row in conn.execute(
                        select(table).where(table.c.workspace_id == workspace_id)
                    )
                ),
                key=repr,
            )
            for table in metadata.sorted_tables
            if "workspace_id" in table.c
        }


def _call(
    client: TestClient, method: str, template: str, ids: dict[str, str], csrf: dict[str, str]
) -> Any:
    path = template
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    body = BODIES.get((method, template))
    return client.request(method.upper(), path, json=body, headers=csrf)


@pytest.fixture
def attacker(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An owner of workspace A, signed in: every permission there is."""
    a, _ = create_workspace(engine, slug="attacker", name="A")
    user(engine, a.id, "mallory@example.com", "owner")
    with api_client(engine) as client:
        yield client, sign_in(client, "attacker", "mallory@example.com")


def test_every_endpoint_aimed_at_another_workspace_finds_nothing(
    engine: Engine, attacker: tuple[TestClient, dict[str, str]]
) -> None:
    client, csrf = attacker
    b_id, ids_b = victim(engine)
    before = _b_rows(engine, b_id)
    operations = [
        (method, path)
        for path, item in client.get("/api/v1/openapi.json").json()["paths"].items()
        for method in item
    ]
    identified = [(m, p) for m, p in operations if "{" in p]
    lists = [(m, p) for m, p in operations if "{" not in p and m == "get"]
    assert {(m, p) for m, p in operations if "{" not in p and m != "get"} == UNIDENTIFIED_WRITES, (
        "a new endpoint: decide here how it is isolated"
    )
    assert len(identified) >= 30
    for method, path in lists:
        answer = client.request(method.upper(), path, headers=csrf)
        assert answer.status_code == 200, (path, answer.text)
        for marker in MARKERS:
            assert marker not in answer.text, (path, marker)
    # Upserts last: they create A's own contact, which later calls would then find.
    for method, path in sorted(identified, key=lambda op: op in OWN_RECORD):
        mine = _call(client, method, path, ids_b | {"name": _name_of(path)}, csrf)
        nowhere = _call(client, method, path, NOWHERE, csrf)
        if "{segment}" in path:  # by name as well as by id
            by_name = _call(client, method, path, {"segment": "机密分群"}, csrf)
            assert by_name.status_code == 404, (method, path, by_name.text)
        assert mine.status_code == nowhere.status_code, (method, path, mine.text)
        if (method, path) in OWN_RECORD:
            assert mine.status_code == 200, (method, path, mine.text)
            continue
        expected = 401 if "/callbacks/" in path else 404
        assert mine.status_code == expected, (method, path, mine.text)
        assert mine.json()["error"]["code"] == nowhere.json()["error"]["code"], (method, path)
    assert _b_rows(engine, b_id) == before


def test_a_key_of_another_workspace_cannot_be_used_to_reach_this_one(engine: Engine) -> None:
    _b, ids_b = victim(engine)
    a, _ = create_workspace(engine, slug="attacker", name="A")
    secret = key(engine, a.id, "contacts:read", "messages:read", "campaigns:read")
    with api_client(engine) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get(f"/api/v1/contacts/{PHONE}", headers=headers).status_code == 404
        assert (
            client.get(f"/api/v1/messages/{ids_b['message_id']}", headers=headers).status_code
            == 404
        )
        assert client.get("/api/v1/campaigns/机密活动", headers=headers).status_code == 404
