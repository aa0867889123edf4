"""Signing in and out with the access service: a session cookie (HttpOnly, the API's
own) whose CSRF token every form of the console carries."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from echelon.access.service import SignInFailed, sign_in, sign_out
from echelon.console.web import SESSION_COOKIE, Console


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//elsewhere``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def cookie_dropped(request: Request, *, secure: bool) -> bool:
    """Whether a browser would drop the session cookie: it is Secure and the page came
    over plain HTTP from a host other than this machine (browsers keep Secure cookies
    of http://localhost and http://127.0.0.1 only)."""
    local = request.url.hostname in ("localhost", "127.0.0.1", "::1")
    return secure and request.url.scheme == "http" and not local


def register(router: APIRouter, console: Console) -> None:
    lifetime = timedelta(hours=console.access.session_hours)

    def form(request: Request, **values: Any) -> dict[str, Any]:
        return {
            "next": "/",
            "workspace": console.settings.workspace,
            "email": "",
            "message": None,
            "insecure": cookie_dropped(request, secure=console.access.cookie_secure),
        } | values

    @router.get("/login")
    def login_form(request: Request, next: str = "/") -> Response:
        if request.state.principal is not None:
            return console.redirect(safe_next(next))
        return console.render(request, "login.html", form(request, next=safe_next(next)))

    @router.post("/login")
    def login(
        request: Request,
        workspace: Annotated[str, Form(max_length=64)],
        email: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=256)],
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        t = console.translator(request)
        client = request.client.host if request.client else "-"
        per_minute = console.access.sign_in_attempts_per_minute
        wait = console.sign_in_limiter.allow(
            f"{client}:{workspace}:{email.lower()}", per_minute=per_minute, burst=per_minute
        )
        message: str | None = None
        if wait > 0:
            message = t("auth.too_many", seconds=math.ceil(wait))
        else:
            try:
                _principal, token = sign_in(
                    console.engine,
                    workspace=workspace,
                    email=email,
                    password=password,
                    now=datetime.now(UTC),
                    lifetime=lifetime,
                )
            except SignInFailed:
                message = t("auth.failed")
        if message is not None:
            return console.render(
                request,
                "login.html",
                form(
                    request,
                    next=safe_next(next),
                    workspace=workspace,
                    email=email,
                    message=message,
                ),
                status_code=401,
            )
        response = console.redirect(safe_next(next))
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(lifetime.total_seconds()),
            path="/",
            secure=console.access.cookie_secure,
            httponly=True,
            samesite="lax",
        )
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        console.page(request)
        sign_out(console.engine, token=request.state.session)
        response = console.redirect("/login")
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            secure=console.access.cookie_secure,
            httponly=True,
            samesite="lax",
        )
        return response
