"""Contacts: search by number or name, and a contact's profile (consent history,
events, messages, replies) with the routine work on it — add and remove tags, grant
or withdraw consent for each purpose (marketing, service), add or remove a
suppression, erase the person's data on request. (Editing the fields is
``contact_edit.py``, the import wizard ``imports.py``.)

Every change goes through the audience service functions the API and CLI use, needs
``contacts:write``, is audited, and answers a refusal with the page and its reason.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from echelon.audience.consent import PURPOSES, grant_consent, revoke_consent
from echelon.audience.contacts import (
    ContactProfile,
    count_contacts,
    export_contacts,
    get_contact,
)
from echelon.audience.profile import retag_contact
from echelon.audience.records import erase_contact, search_contacts
from echelon.audience.suppression import add_suppression, remove_suppression
from echelon.console import charts
from echelon.console.i18n import Problem
from echelon.console.pages.imports import ADDABLE_SUPPRESSIONS
from echelon.console.queries import inbox
from echelon.console.web import Console, Page
from echelon.dispatch.log import message_page
from echelon.errors import EchelonError

PAGE_SIZE = 50
CONSENT_SOURCES: Final = ("store", "web_form", "checkout_checkbox", "phone_call", "paper_form")
CONSOLE_SOURCE: Final = "console"
SOURCE_LIMIT: Final = 64
TEXT_LIMIT: Final = 500
MARKETING: Final = "marketing"


def register(router: APIRouter, console: Console) -> None:
    @router.get("/contacts")
    def contacts(
        request: Request, q: str = "", tag: str = "", after_id: int = 0, done: str = ""
    ) -> Response:
        page = console.page(request, "contacts:read")
        found = search_contacts(
            console.engine,
            workspace_id=page.workspace_id,
            text=q or None,
            tag=tag.strip() or None,
            after_id=max(after_id, 0),
            limit=PAGE_SIZE,
        )
        summary = count_contacts(console.engine, workspace_id=page.workspace_id)
        carriers = {page.t.label("carrier", code): n for code, n in summary["by_carrier"].items()}
        return console.render(
            request,
            "contacts/list.html",
            {
                "q": q,
                "tag": tag,
                "done": done if page.t.has(f"contacts.done.{done}") else "",
                "contacts": found,
                "summary": summary,
                "carrier_chart": charts.pie_chart(carriers),
                "next_after_id": found[-1].id if len(found) == PAGE_SIZE else None,
            },
            page=page,
        )

    @router.get("/contacts/view")
    def contact(request: Request, phone: str, done: str = "") -> Response:
        page = console.page(request, "contacts:read")
        profile = get_contact(console.engine, workspace_id=page.workspace_id, phone=phone)
        return _profile(console, request, page, profile, done=done)

    # -- compliance work on one contact ----------------------------------------------

    def change(
        request: Request, run: Callable[[Page, ContactProfile, dict[str, str]], str]
    ) -> Response:
        """Run one change on the posted contact of this workspace (404 for any other);
        on success back to the profile with what was done, on a refusal the profile
        with the reason."""
        page = console.page(request, "contacts:write")
        form = console.form_text(request)
        profile = get_contact(
            console.engine, workspace_id=page.workspace_id, phone=form.get("phone", "")
        )
        try:
            done = run(page, profile, form)
        except EchelonError as exc:
            return _profile(
                console,
                request,
                page,
                profile,
                message=console.word(request, exc),
                status_code=422,
            )
        return console.redirect(f"/contacts/view?phone={quote(profile.phone)}&done={done}")

    @router.post("/contacts/consent/grant")
    def consent_grant(request: Request) -> Response:
        def run(page: Page, profile: ContactProfile, form: dict[str, str]) -> str:
            purpose = _purpose(form)
            source = _bounded(page, form.get("source", ""), SOURCE_LIMIT, "contact.grant_source")
            if not source:
                raise Problem("contact.need_source")
            proof = _bounded(page, form.get("proof", ""), TEXT_LIMIT, "contact.grant_proof") or None
            granted = grant_consent(
                console.engine,
                workspace_id=page.workspace_id,
                phone=profile.phone,
                purpose=purpose,
                source=source,
                proof=proof,
                now=datetime.now(UTC),
            )
            if not granted:
                return _done(purpose, "consent_exists")
            console.audit(
                page,
                "consent.grant",
                f"contact:{profile.phone}",
                {"purpose": purpose, "source": source, "proof": proof is not None},
            )
            return _done(purpose, "consent_granted")

        return change(request, run)

    @router.post("/contacts/consent/withdraw")
    def consent_withdraw(request: Request) -> Response:
        def run(page: Page, profile: ContactProfile, form: dict[str, str]) -> str:
            purpose = _purpose(form)
            source = (
                _bounded(page, form.get("source", ""), SOURCE_LIMIT, "contact.withdraw_source")
                or CONSOLE_SOURCE
            )
            revoked = revoke_consent(
                console.engine,
                workspace_id=page.workspace_id,
                phone=profile.phone,
                purpose=purpose,
                source=source,
                now=datetime.now(UTC),
            )
            if not revoked:
                return _done(purpose, "consent_missing")
            console.audit(
                page,
                "consent.revoke",
                f"contact:{profile.phone}",
                {"purpose": purpose, "source": source},
            )
            return _done(purpose, "consent_withdrawn")

        return change(request, run)

    @router.post("/contacts/suppress")
    def suppress(request: Request) -> Response:
        def run(page: Page, profile: ContactProfile, form: dict[str, str]) -> str:
            kind = form.get("kind", "")
            if kind not in ADDABLE_SUPPRESSIONS:
                raise Problem("contact.bad_kind")
            reason = _bounded(page, form.get("reason", ""), TEXT_LIMIT, "contact.suppress_reason")
            added = add_suppression(
                console.engine,
                workspace_id=page.workspace_id,
                phone=profile.phone,
                kind=kind,
                source=CONSOLE_SOURCE,
                reason=reason or None,
                now=datetime.now(UTC),
            )
            if not added:
                return "already_suppressed"
            console.audit(
                page,
                "suppression.add",
                f"phone:{profile.phone}",
                {"kind": kind, "reason": reason or None},
            )
            return "suppressed"

        return change(request, run)

    @router.post("/contacts/unsuppress")
    def unsuppress(request: Request) -> Response:
        def run(page: Page, profile: ContactProfile, form: dict[str, str]) -> str:
            kind = form.get("kind", "")
            remove_suppression(
                console.engine, workspace_id=page.workspace_id, phone=profile.phone, kind=kind
            )
            console.audit(page, "suppression.remove", f"phone:{profile.phone}", {"kind": kind})
            return "unsuppressed"

        return change(request, run)

    # -- the profile's fields and tags -------------------------------------------------

    @router.post("/contacts/tags/add")
    def tags_add(request: Request) -> Response:
        def run(page: Page, profile: ContactProfile, form: dict[str, str]) -> str:
            if not form.get("tags", "").strip():
                raise Problem("contact.need_tag")
            return retag(page, profile, add=[form.get("tags", "")])

        return change(request, run)

    @router.post("/contacts/tags/remove")
    def tags_remove(request: Request) -> Response:
        def run(page: Page, profile: ContactProfile, form: dict[str, str]) -> str:
            return retag(page, profile, remove=[form.get("tag", "")])

        return change(request, run)

    def retag(
        page: Page, profile: ContactProfile, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> str:
        added, removed = retag_contact(
            console.engine,
            workspace_id=page.workspace_id,
            phone=profile.phone,
            add=add,
            remove=remove,
        )
        if not added and not removed:
            return "tags_unchanged"
        console.audit(
            page, "contact.tag", f"contact:{profile.phone}", {"added": added, "removed": removed}
        )
        return "tags_changed"

    @router.post("/contacts/erase")
    def erase(request: Request) -> Response:
        page = console.page(request, "contacts:write")
        form = console.form_text(request)
        profile = get_contact(
            console.engine, workspace_id=page.workspace_id, phone=form.get("phone", "")
        )
        try:
            erased = erase_contact(
                console.engine, workspace_id=page.workspace_id, phone=profile.phone
            )
        except EchelonError as exc:
            return _profile(
                console,
                request,
                page,
                profile,
                message=console.word(request, exc),
                status_code=422,
            )
        console.audit(page, "contact.erase", f"contact:{profile.phone}", erased)
        return console.redirect("/contacts?done=erased")

    @router.get("/contacts/export")
    def export(request: Request) -> Response:
        page = console.page(request, "contacts:read")
        handle, name = tempfile.mkstemp(prefix="echelon-export-", suffix=".csv")
        os.close(handle)
        path = Path(name)
        try:
            rows = export_contacts(console.engine, workspace_id=page.workspace_id, path=path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        console.audit(page, "export", "contacts", {"rows": rows, "format": "csv"})
        stamp = page.now.strftime("%Y%m%d-%H%M%S")
        return FileResponse(
            path,
            media_type="text/csv; charset=utf-8",
            filename=f"contacts-{stamp}.csv",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )


def _profile(
    console: Console,
    request: Request,
    page: Page,
    profile: ContactProfile,
    *,
    done: str = "",
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    """The profile page of ``profile``: what was just done, or why it was refused."""
    sent = []
    if page.may("messages:read"):
        sent = message_page(
            console.engine, workspace_id=page.workspace_id, phone=profile.phone, limit=50
        )
    replies = inbox(console.engine, workspace_id=page.workspace_id, phone=profile.phone)
    live = {c.purpose: c for c in profile.consents if c.revoked_at is None}
    return console.render(
        request,
        "contacts/view.html",
        {
            "contact": profile,
            "messages": sent,
            "replies": replies,
            "marketing": live.get(MARKETING),
            "live": live,
            "purposes": [p for p in PURPOSES if p != MARKETING],
            "addable": ADDABLE_SUPPRESSIONS,
            "consent_sources": CONSENT_SOURCES,
            "done": done if page.t.has(f"contact.done.{done}") else "",
            "message": message,
        },
        page=page,
        status_code=status_code,
    )


def _bounded(page: Page, value: str, limit: int, label: str) -> str:
    """A typed field, trimmed; refused (naming the field) when longer than ``limit``."""
    text = value.strip()
    if len(text) > limit:
        raise Problem("contact.too_long", field=page.t(label), limit=limit)
    return text


def _purpose(form: dict[str, str]) -> str:
    purpose = form.get("purpose", "") or MARKETING
    if purpose not in PURPOSES:
        raise Problem("contact.bad_purpose")
    return purpose


def _done(purpose: str, what: str) -> str:
    """The outcome's key: marketing's own (the words a marketer sees most), else the
    purpose's."""
    return what if purpose == MARKETING else f"{purpose}_{what}"
