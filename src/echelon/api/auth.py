"""Who is asking: an API key (``Authorization: Bearer ek_…``) or a console session
cookie, which must bring its CSRF token on anything but a read. The workspace comes
from the key or the session, never from the URL. Each key (and each signed-in user)
has a token bucket: past it, 429 with ``Retry-After``."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from echelon.access.models import Principal
from echelon.access.rules import csrf_matches
from echelon.access.service import key_principal, session_principal
from echelon.api.errors import ApiError
from echelon.api.state import ApiState, api_state

SESSION_COOKIE: Final = "echelon_session"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS: Final = ("application/x-www-form-urlencoded", "multipart/form-data")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="工作区的 API 密钥：`Authorization: Bearer ek_…`",
)
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="ConsoleSession",
    description="控制台登录会话；非只读请求须带 X-CSRF-Token 头（或表单字段 csrf_token）",
)


async def current_principal(
    request: Request,
    state: Annotated[ApiState, Depends(api_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    session: Annotated[str | None, Security(session_cookie)],
) -> Principal:
    if credentials is not None:
        principal = await run_in_threadpool(
            key_principal, state.engine, secret=credentials.credentials
        )
        if principal is None:
            raise ApiError(401, "invalid_key", "API 密钥无效或已撤销")
        per_minute = principal.rate_per_minute or state.access.rate_per_minute
        _limit(state, f"key:{principal.id}", per_minute)
        return principal
    if session is not None:
        principal = await run_in_threadpool(
            session_principal, state.engine, token=session, now=datetime.now(UTC)
        )
        if principal is None:
            raise ApiError(401, "session_expired", "登录已过期，请重新登录")
        if request.method not in _SAFE_METHODS and not csrf_matches(
            session, await _presented_csrf(request)
        ):
            raise ApiError(403, "csrf_failed", "缺少或错误的 CSRF 令牌，请刷新页面后重试")
        _limit(state, f"user:{principal.id}", state.access.rate_per_minute)
        return principal
    raise ApiError(
        401,
        "unauthenticated",
        "请用 API 密钥（Authorization: Bearer ek_…）或登录后访问",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _presented_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if request.headers.get("content-type", "").startswith(_FORMS):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def _limit(state: ApiState, who: str, per_minute: int) -> None:
    burst = min(state.access.burst, per_minute)
    wait = state.limiter.allow(who, per_minute=per_minute, burst=burst)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"请求过于频繁：每分钟最多 {per_minute} 次，请 {math.ceil(wait)} 秒后重试",
            headers={"Retry-After": str(math.ceil(wait))},
        )


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the principal, if it holds ``permission``; 403 otherwise."""

    async def permitted(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.may(permission):
            raise ApiError(403, "forbidden", f"没有权限：需要 {permission}")
        return principal

    return permitted


State = Annotated[ApiState, Depends(api_state)]
Authenticated = Annotated[Principal, Depends(current_principal)]
