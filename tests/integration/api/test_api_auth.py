"""Authentication, sessions with CSRF, scopes and roles, rate limits, keys and the audit
log — over HTTP, on both databases."""

from __future__ import annotations

import base64
import hashlib

from api_support import (
    PASSWORD,
    UNLIMITED,
    api_client,
    assert_error,
    bearer,
    key,
    sign_in,
    user,
)
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from echelon.db.access import users
from echelon.workspaces.service import Workspace


def test_a_request_without_credentials_is_401_in_the_error_shape(client: TestClient) -> None:
    answer = client.get("/api/v1/contacts")
    assert_error(answer, 401, "unauthenticated")
    assert answer.headers["www-authenticate"] == "Bearer"
    assert_error(client.get("/api/v1/contacts", headers=bearer("ek_not-a-key")), 401, "invalid_key")


def test_a_wrong_address_is_a_json_404(client: TestClient) -> None:
    assert_error(client.get("/api/v1/nothing/here"), 404, "not_found")
    assert_error(client.put("/api/v1/audit"), 405, "method_not_allowed")
    # One segment at the root is a short link: an unknown one gets the redirect's page.
    page = client.get("/Ab3dE9x")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "echelon API"


def test_a_body_that_is_not_utf8_json_is_a_400_told_in_chinese(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    headers = bearer(key(engine, store.id)) | {"content-type": "application/json"}
    # Not UTF-8: FastAPI cannot even read it as JSON.
    body = b'{"records": "\xff"}'
    answer = client.post("/api/v1/contacts/batch", content=body, headers=headers)
    error = assert_error(answer, 400, "bad_request")
    assert "请求体无法解析" in error["message"]


def test_a_key_works_until_revoked_and_only_within_its_scopes(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/keys", json={"name": "shop", "scopes": ["contacts:read"]}, headers=owner
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("ek_")
    listed = client.get("/api/v1/keys").json()
    assert [k["name"] for k in listed] == ["shop"]
    assert "secret" not in listed[0] and secret not in str(listed)
    assert client.get("/api/v1/contacts", headers=bearer(secret)).status_code == 200
    refused = client.put(
        "/api/v1/contacts/13900139000", json={"name": "李四"}, headers=bearer(secret)
    )
    assert_error(refused, 403, "forbidden")
    revoked = client.delete(f"/api/v1/keys/{created.json()['id']}", headers=owner)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert_error(client.get("/api/v1/contacts", headers=bearer(secret)), 401, "invalid_key")
    assert_error(client.delete(f"/api/v1/keys/{created.json()['id']}", headers=owner), 404)


def test_a_key_never_carries_more_than_its_maker_holds(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    user(engine, store.id, "dev@example.com", "developer")
    csrf = sign_in(client, "store", "dev@example.com")
    ok = client.post(
        "/api/v1/keys", json={"name": "orders", "scopes": ["messages:send"]}, headers=csrf
    )
    assert ok.status_code == 201
    for scopes in (["campaigns:write"], ["templates:approve"], ["keys:manage"], ["nope"]):
        refused = client.post("/api/v1/keys", json={"name": "x", "scopes": scopes}, headers=csrf)
        assert_error(refused, 422)


def test_sign_in_sets_a_secure_http_only_cookie_and_writes_need_the_csrf_token(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    user(engine, store.id, "ops@example.com", "marketer")
    wrong = client.post(
        "/api/v1/session",
        json={"workspace": "store", "email": "ops@example.com", "password": "wrong password"},
    )
    assert_error(wrong, 401, "sign_in_failed")
    unknown = client.post(
        "/api/v1/session",
        json={"workspace": "nowhere", "email": "ops@example.com", "password": "x" * 12},
    )
    assert_error(unknown, 401, "sign_in_failed")
    csrf = sign_in(client, "store", "ops@example.com")
    cookie = next(c for c in client.cookies.jar if c.name == "echelon_session")
    assert cookie.secure
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert str(cookie.get_nonstandard_attr("SameSite")).lower() == "lax"
    assert client.get("/api/v1/session").json()["user"]["role"] == "marketer"
    body = {"name": "张三"}
    assert_error(client.put("/api/v1/contacts/13900139000", json=body), 403, "csrf_failed")
    forged = {"X-CSRF-Token": "0" * 43}
    assert_error(
        client.put("/api/v1/contacts/13900139000", json=body, headers=forged), 403, "csrf_failed"
    )
    assert client.put("/api/v1/contacts/13900139000", json=body, headers=csrf).status_code == 200
    assert client.delete("/api/v1/session", headers=csrf).status_code == 204
    assert_error(client.get("/api/v1/contacts"), 401)


def _stored_digest(engine: Engine, email: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(select(users.c.password_hash).where(users.c.email == email)).scalar_one()
        )


def test_passwords_are_argon2id_and_a_legacy_scrypt_digest_is_replaced_at_sign_in(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    user(engine, store.id, "ops@example.com", "marketer")
    assert _stored_digest(engine, "ops@example.com").startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    # A digest as written before argon2: scrypt N=2^14, r=8, p=1.
    salt = b"legacy-salt-0123"
    old = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    legacy = "$".join(
        [
            "scrypt",
            "16384",
            "8",
            "1",
            base64.b64encode(salt).decode(),
            base64.b64encode(old).decode(),
        ]
    )
    with engine.begin() as conn:
        conn.execute(
            update(users).where(users.c.email == "ops@example.com").values(password_hash=legacy)
        )
    wrong = {"workspace": "store", "email": "ops@example.com", "password": PASSWORD + "!"}
    assert_error(client.post("/api/v1/session", json=wrong), 401, "sign_in_failed")
    assert _stored_digest(engine, "ops@example.com") == legacy  # a failed try changes nothing
    sign_in(client, "store", "ops@example.com")
    replaced = _stored_digest(engine, "ops@example.com")
    assert replaced.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    # The new digest is the one checked from now on, and is kept as it is.
    client.delete("/api/v1/session", headers=sign_in(client, "store", "ops@example.com"))
    assert _stored_digest(engine, "ops@example.com") == replaced
    assert_error(client.post("/api/v1/session", json=wrong), 401, "sign_in_failed")


def test_roles_decide_what_a_user_may_do(
    engine: Engine, store: Workspace, client: TestClient
) -> None:
    user(engine, store.id, "analyst@example.com", "analyst")
    csrf = sign_in(client, "store", "analyst@example.com")
    assert client.get("/api/v1/reports/dashboard").status_code == 200
    assert_error(client.get("/api/v1/contacts"), 403, "forbidden")
    assert_error(client.get("/api/v1/channels"), 403, "forbidden")
    assert_error(
        client.post("/api/v1/messages", json={"phone": "13800138000", "body": "x"}, headers=csrf),
        403,
    )


def test_an_author_cannot_approve_their_own_template(engine: Engine, store: Workspace) -> None:
    user(engine, store.id, "ops@example.com", "marketer")
    user(engine, store.id, "rev@example.com", "reviewer")
    user(engine, store.id, "boss@example.com", "owner")
    with api_client(engine) as ops, api_client(engine) as rev, api_client(engine) as boss:
        ops_csrf = sign_in(ops, "store", "ops@example.com")
        rev_csrf = sign_in(rev, "store", "rev@example.com")
        boss_csrf = sign_in(boss, "store", "boss@example.com")
        body = {"name": "发货", "kind": "service", "body": "您的订单已发货"}
        assert ops.post("/api/v1/templates", json=body, headers=ops_csrf).status_code == 201
        assert ops.post("/api/v1/templates/发货/submit", headers=ops_csrf).status_code == 200
        assert_error(ops.post("/api/v1/templates/发货/approve", json={}, headers=ops_csrf), 403)
        # The owner wrote this one: even an owner needs a second pair of eyes.
        body = {"name": "促销", "kind": "marketing", "body": "会员日全场8折"}
        assert boss.post("/api/v1/templates", json=body, headers=boss_csrf).status_code == 201
        assert boss.post("/api/v1/templates/促销/submit", headers=boss_csrf).status_code == 200
        mine = boss.post("/api/v1/templates/促销/approve", json={}, headers=boss_csrf)
        assert_error(mine, 403, "self_approval")
        approved = rev.post(
            "/api/v1/templates/发货/approve", json={"note": "可以"}, headers=rev_csrf
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["template"]["reviewed_by"] == "rev@example.com"
        assert (
            rev.post("/api/v1/templates/促销/approve", json={}, headers=rev_csrf).status_code == 200
        )
        actions = [e["action"] for e in boss.get("/api/v1/audit").json()["entries"]]
        assert actions.count("template.approve") == 2


def test_a_key_past_its_rate_gets_429_with_retry_after(engine: Engine, store: Workspace) -> None:
    slow = key(engine, store.id, "contacts:read", rate=2)
    fast = key(engine, store.id, "contacts:read")
    limited = UNLIMITED.model_copy(update={"rate_per_minute": 600, "burst": 60})
    with api_client(engine, limited) as client:
        for _ in range(2):
            assert client.get("/api/v1/contacts", headers=bearer(slow)).status_code == 200
        answer = client.get("/api/v1/contacts", headers=bearer(slow))
        assert_error(answer, 429, "rate_limited")
        assert 1 <= int(answer.headers["retry-after"]) <= 30
        # Buckets are per key: another key of the same workspace is not held back.
        assert client.get("/api/v1/contacts", headers=bearer(fast)).status_code == 200


def test_sign_in_attempts_are_limited(engine: Engine, store: Workspace) -> None:
    limited = UNLIMITED.model_copy(update={"sign_in_attempts_per_minute": 3})
    wrong = {"workspace": "store", "email": "x@example.com", "password": "not it at all"}
    with api_client(engine, limited) as client:
        for _ in range(3):
            assert_error(client.post("/api/v1/session", json=wrong), 401)
        answer = client.post("/api/v1/session", json=wrong)
        assert_error(answer, 429, "rate_limited")
        assert int(answer.headers["retry-after"]) >= 1


def test_users_are_managed_by_owners_and_key_creation_is_audited(
    engine: Engine, store: Workspace, client: TestClient, owner: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/users",
        json={"email": "New@Example.com", "name": "新人", "role": "analyst", "password": "x" * 12},
        headers=owner,
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "new@example.com" and "password" not in created.text
    again = client.post(
        "/api/v1/users",
        json={"email": "new@example.com", "name": "新人", "role": "analyst", "password": "x" * 12},
        headers=owner,
    )
    assert_error(again, 409, "user_exists")
    short = {"email": "a@example.com", "name": "a", "role": "analyst", "password": "short"}
    assert_error(client.post("/api/v1/users", json=short, headers=owner), 422)
    client.post("/api/v1/keys", json={"name": "k", "scopes": ["reports:read"]}, headers=owner)
    created_users = client.get("/api/v1/audit", params={"action": "user.create"}).json()
    assert [e["target"] for e in created_users["entries"]] == ["user:new@example.com"]
    entries = client.get("/api/v1/audit", params={"action": "key.create"}).json()["entries"]
    assert len(entries) == 1
    assert entries[0]["actor"] == "boss@example.com"
    assert entries[0]["detail"]["scopes"] == ["reports:read"]
