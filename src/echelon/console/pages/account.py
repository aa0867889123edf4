"""One's own account: who is signed in, and changing one's own password — the current
password first (argon2id, as at sign-in), then every other session of the person is
signed out (a session somebody else holds included) while this one stays valid."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.access.service import change_password
from echelon.console.i18n import Problem
from echelon.console.web import Console, Page
from echelon.errors import EchelonError

DONE = ("password_changed",)


def register(router: APIRouter, console: Console) -> None:
    @router.get("/account")
    def account(request: Request, done: str = "", ended: int = 0) -> Response:
        page = console.page(request)
        return _page(console, request, page, done=done if done in DONE else "", ended=ended)

    @router.post("/account/password")
    def password(request: Request) -> Response:
        page = console.page(request)
        form = console.form_text(request)
        # Guessing the current password from a session left open is held to the
        # sign-in form's pace.
        per_minute = console.access.sign_in_attempts_per_minute
        wait = console.sign_in_limiter.allow(
            f"password:{page.workspace_id}:{page.principal.id}",
            per_minute=per_minute,
            burst=per_minute,
        )
        try:
            if wait > 0:
                raise Problem("account.too_many", seconds=math.ceil(wait))
            if form.get("new", "") != form.get("confirm", ""):
                raise Problem("account.mismatch")
            ended = change_password(
                console.engine,
                workspace_id=page.workspace_id,
                user_id=page.principal.id,
                current=form.get("current", ""),
                new=form.get("new", ""),
                keep_session=request.state.session,
            )
        except EchelonError as exc:
            message = console.word(request, exc)
            status_code = 429 if wait > 0 else 422
            return _page(console, request, page, message=message, status_code=status_code)
        console.audit(
            page, "user.password", f"user:{page.principal.name}", {"sessions_ended": ended}
        )
        return console.redirect(f"/account?done=password_changed&ended={ended}")


def _page(
    console: Console,
    request: Request,
    page: Page,
    *,
    done: str = "",
    ended: int = 0,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    return console.render(
        request,
        "account.html",
        {"done": done, "ended": max(ended, 0), "message": message},
        page=page,
        status_code=status_code,
    )
