"""Editing a contact's profile by hand: its fields (name, gender, birthday, province,
city) and custom attributes, written as an import file writes them and read by the
same parsers, so a refused value is named the way an import names it — and nothing is
stored. Needs ``contacts:write``; audited as ``contact.update`` with the fields that
changed (never their values: the audit log keeps no personal data)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.audience.contacts import ContactProfile, get_contact
from echelon.audience.profile import EDITABLE, edit_contact
from echelon.audience.regions import PROVINCES
from echelon.console.i18n import Problem
from echelon.console.web import Console, Page
from echelon.errors import EchelonError

# Blank attribute rows the form offers for new attributes.
NEW_ATTRIBUTE_ROWS: Final = 3


def register(router: APIRouter, console: Console) -> None:
    @router.get("/contacts/edit")
    def edit_form(request: Request, phone: str) -> Response:
        page = console.page(request, "contacts:write")
        profile = get_contact(console.engine, workspace_id=page.workspace_id, phone=phone)
        return _edit(console, request, page, profile, _draft_of(profile))

    @router.post("/contacts/edit")
    def edit(request: Request) -> Response:
        page = console.page(request, "contacts:write")
        form = console.form_text(request)
        profile = get_contact(
            console.engine, workspace_id=page.workspace_id, phone=form.get("phone", "")
        )
        draft = _draft_of_form(form)
        try:
            changed = edit_contact(
                console.engine,
                workspace_id=page.workspace_id,
                phone=profile.phone,
                fields={name: draft[name] for name in EDITABLE},
                attributes=_attributes(draft["attributes"]),
                now=datetime.now(UTC),
            )
        except EchelonError as exc:
            message = console.word(request, exc)
            return _edit(console, request, page, profile, draft, message=message, status_code=422)
        if not changed:
            return console.redirect(f"/contacts/view?phone={quote(profile.phone)}&done=unchanged")
        console.audit(page, "contact.update", f"contact:{profile.phone}", {"fields": changed})
        return console.redirect(f"/contacts/view?phone={quote(profile.phone)}&done=edited")


def _edit(
    console: Console,
    request: Request,
    page: Page,
    profile: ContactProfile,
    draft: dict[str, Any],
    *,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    rows = [*draft["attributes"], *([("", "")] * NEW_ATTRIBUTE_ROWS)]
    return console.render(
        request,
        "contacts/edit.html",
        {
            "contact": profile,
            "draft": draft,
            "rows": rows,
            "provinces": [short for _, short in PROVINCES],
            "message": message,
        },
        page=page,
        status_code=status_code,
    )


def _draft_of(profile: ContactProfile) -> dict[str, Any]:
    """The edit form's values of a stored profile."""
    return {
        "name": profile.name or "",
        "gender": profile.gender or "",
        "birthday": profile.birthday.isoformat() if profile.birthday else "",
        "birthday_lunar": "1" if profile.birthday_lunar else "",
        "province": profile.province or "",
        "city": profile.city or "",
        "attributes": [(name, str(value)) for name, value in profile.attributes.items()],
    }


def _draft_of_form(form: dict[str, str]) -> dict[str, Any]:
    """The edit form's values as posted (shown again, as typed, when refused)."""
    draft: dict[str, Any] = {name: form.get(name, "") for name in EDITABLE}
    rows = []
    for index in count():
        if f"attr.{index}.name" not in form:
            break
        rows.append((form[f"attr.{index}.name"], form.get(f"attr.{index}.value", "")))
    draft["attributes"] = [(n, v) for n, v in rows if n.strip() or v.strip()]
    return draft


def _attributes(rows: list[tuple[str, str]]) -> dict[str, str]:
    """Attribute rows as name → value (a blank value removes the attribute); a value
    without a name, or a name twice, is refused."""
    found: dict[str, str] = {}
    for name, value in rows:
        name = name.strip()
        if not name:
            raise Problem("contact.attribute_needs_name", value=value.strip())
        if name in found:
            raise Problem("contact.attribute_twice", name=name)
        found[name] = value
    return found
