"""Templates: the editor with a live counter (characters, parts, cost) and word hits
marked in the text with suggested rewrites; preview for a chosen contact; submit for
review; and the reviewers' queue. Approval goes through the access service, so only a
reviewer (or owner) approves, and never the template's author."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.access.service import approve_template_as
from echelon.console.format import highlight
from echelon.console.web import Console, Page
from echelon.content.compose import MESSAGE_KINDS
from echelon.content.length import MAX_MESSAGE_LENGTH
from echelon.content.preview import check_workspace_text, preview_template
from echelon.content.pricing import estimate
from echelon.content.render import compile_template
from echelon.content.review import (
    edit_template,
    lint_template,
    reject_template,
    submit_template,
    template_history,
)
from echelon.content.templates import (
    Template,
    check_body,
    check_kind,
    create_template,
    get_template,
    list_templates,
)
from echelon.content.words import Severity
from echelon.errors import EchelonError
from echelon.workspaces.service import get_settings

STATUSES: Final = ("draft", "pending", "approved", "rejected")
DONE_MESSAGES: Final = frozenset({"created", "saved", "submitted", "approved", "rejected"})


def text_check(
    console: Console, page: Page, *, body: str, kind: str, signature: str | None
) -> dict[str, Any]:
    """The live counter of a body being written: the text as sent, its parts and the
    cost of one message now, word hits marked — or why it cannot be sent as written."""
    try:
        checked_kind = check_kind(kind)
        checked = check_workspace_text(
            console.engine,
            workspace_id=page.workspace_id,
            body=check_body(body),
            kind=checked_kind,
            signature=signature or None,
        )
        variables = sorted(compile_template(body.strip()).variables)
    except EchelonError as exc:
        return {"ok": False, "message": exc.message, "length": len(body)}
    plan = get_settings(console.engine, workspace_id=page.workspace_id).price_plan
    cost = estimate(plan, [(checked.count.parts, page.now)], now=page.now)
    return {
        "ok": True,
        "text": checked.text,
        "spans": highlight(checked.text, checked.hits),
        "count": checked.count,
        "characters": len(checked.text),
        "max_characters": MAX_MESSAGE_LENGTH,
        "cost": cost.exact_cost,
        "hits": checked.hits,
        "blocking": any(h.severity is Severity.BLOCK for h in checked.hits),
        "variables": variables,
    }


def register(router: APIRouter, console: Console) -> None:
    @router.get("/templates")
    def templates(request: Request, status: str = "") -> Response:
        page = console.page(request, "templates:read")
        chosen = status if status in STATUSES else None
        return console.render(
            request,
            "templates/list.html",
            {
                "templates": list_templates(
                    console.engine, workspace_id=page.workspace_id, status=chosen
                ),
                "status": chosen,
                "statuses": STATUSES,
            },
            page=page,
        )

    @router.get("/templates/new")
    def new(request: Request) -> Response:
        page = console.page(request, "templates:write")
        return _editor(
            console,
            request,
            page,
            None,
            name="",
            kind="marketing",
            body="",
            signature="",
            message=None,
        )

    @router.post("/templates/check")
    def check(request: Request) -> Response:
        page = console.page(request, "templates:read")
        form = console.form_text(request)
        result = text_check(
            console,
            page,
            body=form.get("body", ""),
            kind=form.get("kind", "marketing"),
            signature=form.get("signature", "").strip() or None,
        )
        return console.render(request, "templates/_counter.html", {"check": result}, page=page)

    @router.post("/templates/create")
    def create(request: Request) -> Response:
        page = console.page(request, "templates:write")
        form = console.form_text(request)
        try:
            created = create_template(
                console.engine,
                workspace_id=page.workspace_id,
                name=form.get("name", ""),
                kind=form.get("kind", "marketing"),
                body=form.get("body", ""),
                signature=form.get("signature", "").strip() or None,
                actor=page.principal.actor,
                now=datetime.now(UTC),
            )
        except EchelonError as exc:
            return _editor(
                console,
                request,
                page,
                None,
                name=form.get("name", ""),
                kind=form.get("kind", "marketing"),
                body=form.get("body", ""),
                signature=form.get("signature", ""),
                message=exc.message,
            )
        return _to_view(console, created.name, "created")

    @router.get("/templates/view")
    def view(request: Request, name: str, done: str = "") -> Response:
        page = console.page(request, "templates:read")
        template = get_template(console.engine, workspace_id=page.workspace_id, name=name)
        return _view(console, request, page, template, done=done, message=None)

    @router.post("/templates/edit")
    def edit(request: Request) -> Response:
        page = console.page(request, "templates:write")
        form = console.form_text(request)
        name = form.get("name", "")
        try:
            edit_template(
                console.engine,
                workspace_id=page.workspace_id,
                name=name,
                body=form.get("body"),
                kind=form.get("kind"),
                signature=form.get("signature", "").strip() or None,
                use_workspace_signature=not form.get("signature", "").strip(),
                actor=page.principal.actor,
                now=datetime.now(UTC),
            )
        except EchelonError as exc:
            template = get_template(console.engine, workspace_id=page.workspace_id, name=name)
            return _view(console, request, page, template, done="", message=exc.message, draft=form)
        return _to_view(console, name, "saved")

    @router.post("/templates/submit")
    def submit(request: Request) -> Response:
        page = console.page(request, "templates:write")
        name = console.form_text(request).get("name", "")
        submit_template(
            console.engine,
            workspace_id=page.workspace_id,
            name=name,
            actor=page.principal.actor,
            now=datetime.now(UTC),
        )
        return _to_view(console, name, "submitted")

    @router.post("/templates/approve")
    def approve(request: Request) -> Response:
        page = console.page(request, "templates:approve")
        form = console.form_text(request)
        note = form.get("note", "").strip() or None
        change = approve_template_as(
            console.engine,
            principal=page.principal,
            name=form.get("name", ""),
            note=note,
            now=datetime.now(UTC),
        )
        console.audit(page, "template.approve", f"template:{change.template.name}", {"note": note})
        return _to_view(console, change.template.name, "approved")

    @router.post("/templates/reject")
    def reject(request: Request) -> Response:
        page = console.page(request, "templates:approve")
        form = console.form_text(request)
        reason = form.get("reason", "")
        change = reject_template(
            console.engine,
            workspace_id=page.workspace_id,
            name=form.get("name", ""),
            actor=page.principal.actor,
            reason=reason,
            now=datetime.now(UTC),
        )
        console.audit(
            page, "template.reject", f"template:{change.template.name}", {"reason": reason}
        )
        return _to_view(console, change.template.name, "rejected")

    @router.post("/templates/preview")
    def preview(request: Request) -> Response:
        page = console.page(request, "templates:read")
        form = console.form_text(request)
        try:
            shown = preview_template(
                console.engine,
                workspace_id=page.workspace_id,
                name=form.get("name", ""),
                phone=form.get("phone", ""),
                now=datetime.now(UTC),
            )
        except EchelonError as exc:
            return console.render(
                request, "_flash.html", {"kind": "error", "message": exc.message}, page=page
            )
        return console.render(
            request,
            "templates/_preview.html",
            {"preview": shown, "spans": highlight(shown.text, shown.hits)},
            page=page,
        )

    @router.get("/review")
    def review(request: Request) -> Response:
        page = console.page(request, "templates:approve")
        pending = list_templates(console.engine, workspace_id=page.workspace_id, status="pending")
        queue = []
        for template in pending:
            lint = lint_template(console.engine, workspace_id=page.workspace_id, name=template.name)
            history = template_history(
                console.engine, workspace_id=page.workspace_id, name=template.name
            )
            authors = {r.actor for r in history if r.action in ("created", "edited", "submitted")}
            queue.append(
                {
                    "template": template,
                    "spans": highlight(lint.text, lint.hits),
                    "hits": lint.hits,
                    "own": page.principal.actor in authors,
                }
            )
        return console.render(request, "templates/review.html", {"queue": queue}, page=page)


def _to_view(console: Console, name: str, done: str) -> Response:
    return console.redirect(f"/templates/view?name={quote(name, safe='')}&done={done}")


def _editor(
    console: Console,
    request: Request,
    page: Page,
    template: Template | None,
    *,
    name: str,
    kind: str,
    body: str,
    signature: str,
    message: str | None,
) -> Response:
    return console.render(
        request,
        "templates/editor.html",
        {
            "template": template,
            "name": name,
            "kind": kind,
            "body": body,
            "signature": signature,
            "kinds": sorted(MESSAGE_KINDS),
            "message": message,
            "check": text_check(console, page, body=body, kind=kind, signature=signature or None)
            if body.strip()
            else None,
        },
        page=page,
    )


def _view(
    console: Console,
    request: Request,
    page: Page,
    template: Template,
    *,
    done: str,
    message: str | None,
    draft: dict[str, str] | None = None,
) -> Response:
    history = template_history(console.engine, workspace_id=page.workspace_id, name=template.name)
    body = (draft or {}).get("body", template.body)
    kind = (draft or {}).get("kind", template.kind)
    signature = (draft or {}).get("signature", template.signature or "")
    authors = {r.actor for r in history if r.action in ("created", "edited", "submitted")}
    return console.render(
        request,
        "templates/view.html",
        {
            "template": template,
            "history": history,
            "body": body,
            "kind": kind,
            "signature": signature,
            "kinds": sorted(MESSAGE_KINDS),
            "check": text_check(console, page, body=body, kind=kind, signature=signature or None),
            "done": done if done in DONE_MESSAGES else "",
            "message": message,
            "own": page.principal.actor in authors,
        },
        page=page,
    )
