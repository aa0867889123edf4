"""Sign-in sessions, users, API keys and the audit log."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from echelon.access.models import PERMISSIONS, ApiKey, Principal, Role
from echelon.access.rules import csrf_token
from echelon.access.service import (
    create_key,
    create_user,
    list_audit,
    list_keys,
    list_users,
    revoke_key,
    sign_in,
    sign_out,
)
from echelon.api.auth import SESSION_COOKIE, Authenticated, State, require, session_cookie
from echelon.api.encoding import plain, plain_object
from echelon.api.errors import ApiError
from echelon.api.params import BeforeId, IdPath, audit

router = APIRouter(tags=["账号与密钥"])

UsersAdmin = Annotated[Principal, Depends(require("users:manage"))]
KeysAdmin = Annotated[Principal, Depends(require("keys:manage"))]
AuditReader = Annotated[Principal, Depends(require("audit:read"))]


class SignIn(BaseModel):
    workspace: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=200)
    password: str = Field(min_length=1, max_length=256)


class NewUser(BaseModel):
    email: str = Field(min_length=3, max_length=200)
    name: str = Field(min_length=1, max_length=100)
    role: Role
    password: str = Field(min_length=10, max_length=256)


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=len(PERMISSIONS))
    rate_per_minute: int | None = Field(None, ge=1, le=1_000_000)


def _principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "kind": principal.kind,
        "name": principal.name,
        "role": principal.role,
        "permissions": sorted(principal.permissions),
    }


@router.post("/session", summary="登录控制台")
def open_session(body: SignIn, request: Request, response: Response, state: State) -> Any:
    client = request.client.host if request.client else "-"
    per_minute = state.access.sign_in_attempts_per_minute
    wait = state.sign_in_limiter.allow(
        f"{client}:{body.workspace}:{body.email.lower()}", per_minute=per_minute, burst=per_minute
    )
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"登录尝试过于频繁，请 {math.ceil(wait)} 秒后重试",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    principal, token = sign_in(
        state.engine,
        workspace=body.workspace,
        email=body.email,
        password=body.password,
        now=datetime.now(UTC),
        lifetime=state.session_lifetime,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.session_lifetime.total_seconds()),
        path="/",
        secure=state.access.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return {"user": _principal_json(principal), "csrf_token": csrf_token(token)}


@router.get("/session", summary="当前登录身份与 CSRF 令牌")
def show_session(
    principal: Authenticated, token: Annotated[str | None, Depends(session_cookie)]
) -> Any:
    return {
        "user": _principal_json(principal),
        "csrf_token": None if token is None or principal.kind != "user" else csrf_token(token),
    }


@router.delete("/session", status_code=204, summary="退出登录")
def close_session(
    _principal: Authenticated,
    token: Annotated[str | None, Depends(session_cookie)],
    response: Response,
    state: State,
) -> Response:
    if token is not None:
        sign_out(state.engine, token=token)
    response.status_code = 204
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=state.access.cookie_secure, httponly=True, samesite="lax"
    )
    return response


@router.get("/users", summary="工作区的用户")
def users(principal: UsersAdmin, state: State) -> Any:
    return plain(list_users(state.engine, workspace_id=principal.workspace_id))


@router.post("/users", status_code=201, summary="新建用户")
def add_user(body: NewUser, principal: UsersAdmin, state: State) -> Any:
    created = create_user(
        state.engine,
        workspace_id=principal.workspace_id,
        email=body.email,
        name=body.name,
        role=body.role.value,
        password=body.password,
        now=datetime.now(UTC),
    )
    audit(state, principal, "user.create", f"user:{created.email}", {"role": created.role.value})
    return plain(created)


def _key_json(key: ApiKey) -> dict[str, Any]:
    return plain_object(key) | {"revoked": key.revoked_at is not None}


@router.get("/keys", summary="API 密钥（不含密钥本身）")
def keys(principal: KeysAdmin, state: State) -> Any:
    return [_key_json(k) for k in list_keys(state.engine, workspace_id=principal.workspace_id)]


@router.post("/keys", status_code=201, summary="新建 API 密钥（密钥只显示这一次）")
def add_key(body: NewKey, principal: KeysAdmin, state: State) -> Any:
    created = create_key(
        state.engine,
        workspace_id=principal.workspace_id,
        name=body.name,
        scopes=body.scopes,
        rate_per_minute=body.rate_per_minute,
        created_by=principal.actor,
        holder=principal.permissions,
        now=datetime.now(UTC),
    )
    return _key_json(created.key) | {"secret": created.secret}


@router.delete("/keys/{key_id}", summary="撤销 API 密钥（立即失效）")
def remove_key(key_id: IdPath, principal: KeysAdmin, state: State) -> Any:
    return _key_json(
        revoke_key(
            state.engine,
            workspace_id=principal.workspace_id,
            key_id=key_id,
            actor=principal.actor,
            now=datetime.now(UTC),
        )
    )


@router.get("/audit", summary="审计日志（最新在前）")
def audit_log(
    principal: AuditReader,
    state: State,
    action: Annotated[str | None, Query(max_length=32)] = None,
    before_id: BeforeId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    entries = list_audit(
        state.engine,
        workspace_id=principal.workspace_id,
        action=action,
        before_id=before_id,
        limit=limit,
    )
    return {"entries": plain(entries), "next_before_id": entries[-1].id if entries else None}
