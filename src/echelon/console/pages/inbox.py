"""The inbox: replies newest first, each with the message it answered; opt-outs marked
(the dispatcher has already suppressed the number and revoked its consent)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.console.queries import inbox
from echelon.console.web import Console

PAGE_SIZE = 50


def register(router: APIRouter, console: Console) -> None:
    @router.get("/inbox")
    def replies(
        request: Request, phone: str = "", opt_outs: str = "", before_id: int | None = None
    ) -> Response:
        page = console.page(request, "messages:read")
        found = inbox(
            console.engine,
            workspace_id=page.workspace_id,
            phone=phone.strip() or None,
            opt_outs_only=opt_outs == "1",
            before_id=before_id,
            limit=PAGE_SIZE,
        )
        return console.render(
            request,
            "inbox.html",
            {
                "replies": found,
                "phone": phone,
                "opt_outs": opt_outs == "1",
                "next_before_id": found[-1].id if len(found) == PAGE_SIZE else None,
            },
            page=page,
        )
