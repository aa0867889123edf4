"""Templates: the editor with a live counter (characters, parts, cost) and word hits
marked in the text with suggested rewrites, each applied with one click; preview for a
chosen contact; a test message sent through the outbox to a typed number; submit for
review; delete an unused one; and the reviewers' queue. Approval goes through the
access service, so only a reviewer (or owner) approves, and never the template's
author."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.access.service import approve_template_as
from echelon.campaigns.service import campaign_status
from echelon.console.format import highlight
from echelon.console.i18n import Problem
from echelon.console.web import Console, Page
from echelon.content.compose import MESSAGE_KINDS
from echelon.content.length import MAX_MESSAGE_LENGTH
from echelon.content.preview import check_workspace_text, preview_template
from echelon.content.pricing import estimate
from echelon.content.render import MissingVariable, compile_template
from echelon.content.review import (
    edit_template,
    lint_template,
    reject_template,
    submit_template,
    template_history,
)
from echelon.content.templates import (
    Template,
    TemplateInUse,
    check_body,
    check_kind,
    create_template,
    delete_template,
    get_template,
    list_templates,
)
from echelon.content.words import Hit, Severity
from echelon.dispatch.channel_admin import list_channels
from echelon.dispatch.send import send_test_message
from echelon.errors import EchelonError
from echelon.workspaces.service import get_settings

STATUSES: Final = ("draft", "pending", "approved", "rejected")
DONE_MESSAGES: Final = frozenset({"created", "saved", "submitted", "approved", "rejected"})
# Variables a test message's sender fills in (``link`` and ``coupon`` are placeholders
# of the real length, as in a preview), with a plausible value to start from.
SAMPLE_VALUES: Final = {
    "name": "张三",
    "gender": "先生",
    "birthday": "5月17日",
    "province": "广东",
    "city": "深圳",
    "carrier": "中国移动",
}
PLACEHOLDER_VARIABLES: Final = frozenset({"link", "coupon"})


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
        "hits": [(hit, body_place(body, checked.text, hit)) for hit in checked.hits],
        "blocking": any(h.severity is Severity.BLOCK for h in checked.hits),
        "variables": variables,
    }


def body_place(body: str, composed: str, hit: Hit) -> dict[str, Any] | None:
    """Where ``hit`` (found in ``composed``, the text as sent) lies in ``body`` as the
    editor holds it, for replacing it with its suggestion there: offsets in UTF-16 code
    units with line breaks as one ``\\n`` (a textarea's value), and the text they
    span. None when it has no suggestion or lies outside the body (signature, opt-out
    line)."""
    if hit.suggestion is None or not composed.startswith("【"):
        return None
    stripped = body.strip()
    start = hit.start - (composed.index("】") + 1)
    end = start + (hit.end - hit.start)
    if start < 0 or end > len(stripped):
        return None
    lead = len(body) - len(body.lstrip())
    return {
        "start": _textarea_offset(body, lead + start),
        "end": _textarea_offset(body, lead + end),
        "match": composed[hit.start : hit.end].replace("\r\n", "\n"),
    }


def _textarea_offset(text: str, index: int) -> int:
    """``index`` into ``text`` as a browser counts it in a textarea's value."""
    return len(text[:index].replace("\r\n", "\n").encode("utf-16-le")) // 2


def sample_fields(template: Template) -> list[tuple[str, str]]:
    """The variables a test message with sample values asks for, each with a value to
    start from."""
    wanted = sorted(template.variables - PLACEHOLDER_VARIABLES)
    return [(name, SAMPLE_VALUES.get(name, "")) for name in wanted]


def message_test_form(
    console: Console,
    page: Page,
    template: Template,
    *,
    channel: str | None = None,
    campaign: str | None = None,
) -> dict[str, Any]:
    """What the test message form shows: the template's sample fields, the channels
    (``channel`` chosen) and the campaign it is sent from, if any."""
    return {
        "template": template.name,
        "fields": sample_fields(template),
        "channels": list_channels(console.engine, workspace_id=page.workspace_id),
        "channel": channel or "",
        "campaign": campaign,
    }


def register(router: APIRouter, console: Console) -> None:
    @router.get("/templates")
    def templates(request: Request, status: str = "", done: str = "") -> Response:
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
                "done": done == "deleted",
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

    @router.post("/templates/test")
    def send_test(request: Request) -> Response:
        page = console.page(request, "messages:send")
        page.require("templates:write")
        form = console.form_text(request)
        template = get_template(
            console.engine, workspace_id=page.workspace_id, name=form.get("template", "")
        )
        campaign = form.get("campaign", "").strip() or None
        if campaign is not None:
            campaign_status(console.engine, workspace_id=page.workspace_id, name=campaign)
        to = form.get("to", "").strip()
        if not to:
            raise Problem("template.test_need_to")
        contact = None
        values: dict[str, object] = {}
        if form.get("source") == "contact":
            contact = form.get("contact", "").strip()
            if not contact:
                raise Problem("template.test_need_contact")
        else:
            # A value left empty is left out: the template's own default, if it has one.
            for name, _ in sample_fields(template):
                value = form.get(f"v.{name}", "").strip() or (to if name == "phone" else "")
                if value:
                    values[name] = value
        try:
            sent = send_test_message(
                console.engine,
                workspace_id=page.workspace_id,
                template=template.name,
                to=to,
                contact=contact,
                values=values,
                channel=form.get("channel", "").strip() or None,
                now=datetime.now(UTC),
            )
        except MissingVariable as exc:
            if contact is not None:
                raise
            raise Problem("template.test_need_value", name=exc.variable) from exc
        console.audit(
            page,
            "message.send",
            f"message:{sent.message_id}",
            {
                "phone": sent.phone,
                "kind": "test",
                "status": sent.status,
                "template": template.name,
                "campaign": campaign,
            },
        )
        return console.render(request, "templates/_test_result.html", {"sent": sent}, page=page)

    @router.post("/templates/delete")
    def delete(request: Request) -> Response:
        page = console.page(request, "templates:write")
        name = console.form_text(request).get("name", "")
        try:
            deleted = delete_template(console.engine, workspace_id=page.workspace_id, name=name)
        except TemplateInUse as exc:
            template = get_template(console.engine, workspace_id=page.workspace_id, name=name)
            return _view(
                console,
                request,
                page,
                template,
                done="",
                message=exc.message,
                status_code=exc.http_status,
            )
        console.audit(
            page,
            "template.delete",
            f"template:{deleted.name}",
            {"kind": deleted.kind, "status": deleted.review_status, "body": deleted.body},
        )
        return console.redirect("/templates?done=deleted")

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
    status_code: int = 200,
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
            "test": message_test_form(console, page, template),
        },
        page=page,
        status_code=status_code,
    )
