"""The inbox: replies newest first, each with the message it answered; opt-outs marked
(the dispatcher has already suppressed the number and revoked its consent).

A reply can be answered from here: a service message back to its number, sent the way
``POST /api/v1/messages`` sends one — into the outbox through the compliance gate (a
number that opted out or is blacklisted gets nothing, and the page says why), then by
the dispatcher — once per form shown (its idempotency key), and audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from secrets import token_urlsafe
from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.access.sending import send_message
from echelon.console.i18n import Problem
from echelon.console.queries import inbox, reply_phone
from echelon.console.web import Console, Page
from echelon.errors import EchelonError, NotFound

PAGE_SIZE = 50
BODY_LIMIT: Final = 500  # what the send API takes
MAX_ID: Final = 2**63 - 1
DONE: Final = ("answered", "answer_blocked")


def register(router: APIRouter, console: Console) -> None:
    @router.get("/inbox")
    def replies(
        request: Request,
        phone: str = "",
        opt_outs: str = "",
        before_id: int | None = None,
        done: str = "",
        reason: str = "",
    ) -> Response:
        page = console.page(request, "messages:read")
        return _inbox(
            console,
            request,
            page,
            phone=phone,
            opt_outs=opt_outs == "1",
            before_id=before_id,
            done=done if done in DONE else "",
            reason=reason,
        )

    @router.post("/inbox/answer")
    def answer(request: Request) -> Response:
        page = console.page(request, "messages:send")
        form = console.form_text(request)
        text = form.get("reply", "").strip()
        reply_id = int(text) if text.isascii() and text.isdigit() else 0
        if not 1 <= reply_id <= MAX_ID:
            raise NotFound(f"回复 {text} 不存在")
        phone = reply_phone(console.engine, workspace_id=page.workspace_id, reply_id=reply_id)
        body = form.get("body", "").strip()
        nonce = form.get("nonce", "").strip()
        try:
            if not body:
                raise Problem("inbox.answer_empty")
            if len(body) > BODY_LIMIT:
                raise Problem("contact.too_long", field=page.t("inbox.answer"), limit=BODY_LIMIT)
            sent = send_message(
                console.engine,
                principal=page.principal,
                phone=phone,
                body=body,
                kind="service",
                # One answer per form shown: a second click, or a resent form, sends nothing.
                idempotency_key=f"console-answer:{reply_id}:{nonce}" if nonce else None,
                keep=timedelta(hours=console.access.idempotency_hours),
                now=datetime.now(UTC),
            )
        except EchelonError as exc:
            return _inbox(
                console,
                request,
                page,
                phone=phone,
                message=console.word(request, exc),
                draft={reply_id: body},
                status_code=422,
            )
        outcome: dict[str, str] = {"phone": phone, "done": "answered"}
        if sent.body["status"] == "blocked":
            outcome |= {"done": "answer_blocked", "reason": str(sent.body["block_reason"])}
        return console.redirect("/inbox?" + urlencode(outcome))


def _inbox(
    console: Console,
    request: Request,
    page: Page,
    *,
    phone: str = "",
    opt_outs: bool = False,
    before_id: int | None = None,
    done: str = "",
    reason: str = "",
    message: str | None = None,
    draft: dict[int, str] | None = None,
    status_code: int = 200,
) -> Response:
    found = inbox(
        console.engine,
        workspace_id=page.workspace_id,
        phone=phone.strip() or None,
        opt_outs_only=opt_outs,
        before_id=before_id,
        limit=PAGE_SIZE,
    )
    return console.render(
        request,
        "inbox.html",
        {
            "replies": found,
            "phone": phone,
            "opt_outs": opt_outs,
            "next_before_id": found[-1].id if len(found) == PAGE_SIZE else None,
            "done": done,
            "reason": reason,
            "message": message,
            "draft": draft or {},
            "nonce": token_urlsafe(16),
            "may_answer": page.may("messages:send"),
            "body_limit": BODY_LIMIT,
        },
        page=page,
        status_code=status_code,
    )
