"""Segments: a builder for the condition language — a list of conditions joined by
"all" or "any", or the definition as JSON — with the live count and its carrier and
province breakdown updated as conditions change; saved segments, their members, new
segments from the built-in presets, and deleting one nothing uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.audience.fields import BUILTIN_EVENT_TYPES
from echelon.audience.phone import Carrier
from echelon.console import charts
from echelon.console.forms import (
    KIND_FIELDS,
    Row,
    definition_from_rows,
    definition_text,
    parse_definition_text,
    rows_from_definition,
    rows_from_form,
)
from echelon.console.i18n import Problem, Translator
from echelon.console.web import Console, Page
from echelon.errors import EchelonError
from echelon.segments.models import parse_definition
from echelon.segments.presets import PRESETS
from echelon.segments.service import (
    Segment,
    SegmentCount,
    SegmentInUse,
    count_segment,
    create_from_preset,
    create_segment,
    delete_segment,
    edit_segment,
    get_segment,
    list_members,
    list_segments,
)

MEMBERS_PAGE = 50
DEFAULT_ROW: Row = {"kind": "consent", "purpose": "marketing", "state": "granted"}
ATTRIBUTE_FIELDS = ("name", "phone", "province", "city", "carrier", "birthday")
CHOICES: dict[str, tuple[str, ...]] = {
    "attribute.op": ("equals", "in", "contains", "exists", "range"),
    "tag.match": ("any", "all"),
    "gender.value": ("female", "male", "unknown"),
    "consent.purpose": ("marketing", "service"),
    "consent.state": ("granted", "revoked", "never"),
    "purchases.measure": ("days_since_last", "count", "total", "average", "coupon_share"),
    "engagement.action": ("received", "clicked", "replied"),
}


def breakdown(count: SegmentCount, t: Translator) -> dict[str, Any]:
    """The count's charts: carriers as a pie, provinces as bars (no map of China in
    ECharts 5)."""
    carriers = {
        t.label("carrier", code) if code != "unknown" else t("common.unknown"): n
        for code, n in count.by_carrier.items()
    }
    provinces = sorted(count.by_province.items(), key=lambda kv: -kv[1])
    labels = [name if name != "unknown" else t("common.unknown") for name, _ in provinces]
    return {
        "carrier_chart": charts.pie_chart(carriers),
        "province_chart": charts.bar_chart(
            labels, {t("segment.members"): [n for _, n in provinces]}, horizontal=True
        ),
        "province_rows": len(provinces),
    }


def register(router: APIRouter, console: Console) -> None:
    @router.get("/segments")
    def segments(request: Request, done: str = "") -> Response:
        page = console.page(request, "segments:read")
        return console.render(
            request,
            "segments/list.html",
            {
                "segments": list_segments(console.engine, workspace_id=page.workspace_id),
                "presets": list(PRESETS.values()),
                "done": done == "deleted",
            },
            page=page,
        )

    @router.post("/segments/preset")
    def from_preset(request: Request) -> Response:
        page = console.page(request, "segments:write")
        form = console.form_text(request)
        created = create_from_preset(
            console.engine,
            workspace_id=page.workspace_id,
            preset=form.get("preset", ""),
            name=form.get("name") or None,
            now=datetime.now(UTC),
        )
        return console.redirect(f"/segments/view?id={created.id}")

    @router.get("/segments/new")
    def new(request: Request) -> Response:
        page = console.page(request, "segments:write")
        return _builder(console, request, page, None, "and", [dict(DEFAULT_ROW)], None, None)

    @router.get("/segments/edit")
    def edit(request: Request, id: int) -> Response:
        page = console.page(request, "segments:write")
        segment = get_segment(console.engine, workspace_id=page.workspace_id, segment=id)
        flat = rows_from_definition(segment.definition)
        if flat is None:
            return _builder(
                console,
                request,
                page,
                segment,
                "and",
                [],
                definition_text(segment.definition),
                None,
            )
        combinator, rows = flat
        return _builder(console, request, page, segment, combinator, rows, None, None)

    @router.post("/segments/builder")
    def builder(request: Request) -> Response:
        """The conditions re-drawn after adding, removing or retyping one, or switching
        between the builder and JSON; the count follows out of band."""
        page = console.page(request, "segments:read")
        form = console.form_text(request)
        combinator = form.get("combinator", "and")
        action = form.get("action", "")
        rows = rows_from_form(form)
        json_text: str | None = form.get("definition") if form.get("mode") == "json" else None
        message = None
        if action == "add":
            rows.append(dict(DEFAULT_ROW))
        elif action.startswith("remove:"):
            # A malformed index (a hand-made post) removes nothing rather than failing.
            index = action.split(":", 1)[1]
            rows = [row for i, row in enumerate(rows) if str(i) != index]
        elif action == "json":
            try:
                json_text = definition_text(definition_from_rows(combinator, rows))
            except EchelonError as exc:
                message = console.word(request, exc)
        elif action == "rows" and json_text is not None:
            try:
                flat = rows_from_definition(parse_definition_text(json_text))
                if flat is None:
                    raise Problem("segment.too_nested")
                combinator, rows = flat
                json_text = None
            except EchelonError as exc:
                message = console.word(request, exc)
        context = _builder_context(console, page, combinator, rows, json_text)
        context["message"] = message
        context["oob"] = True
        context["count"] = _count(console, request, page, combinator, rows, json_text)
        return console.render(request, "segments/_builder.html", context, page=page)

    @router.post("/segments/count")
    def count(request: Request) -> Response:
        page = console.page(request, "segments:read")
        form = console.form_text(request)
        json_text = form.get("definition") if form.get("mode") == "json" else None
        counted = _count(
            console, request, page, form.get("combinator", "and"), rows_from_form(form), json_text
        )
        return console.render(request, "segments/_count.html", {"count": counted}, page=page)

    @router.post("/segments/save")
    def save(request: Request) -> Response:
        page = console.page(request, "segments:write")
        form = console.form_text(request)
        combinator = form.get("combinator", "and")
        rows = rows_from_form(form)
        json_text = form.get("definition") if form.get("mode") == "json" else None
        segment_id = int(form["id"]) if form.get("id", "").isdigit() else None
        try:
            definition = _definition(combinator, rows, json_text)
            if segment_id is None:
                saved = create_segment(
                    console.engine,
                    workspace_id=page.workspace_id,
                    name=form.get("name", ""),
                    definition=definition,
                    description=form.get("description") or None,
                    now=datetime.now(UTC),
                )
            else:
                saved = edit_segment(
                    console.engine,
                    workspace_id=page.workspace_id,
                    segment=segment_id,
                    definition=definition,
                    name=form.get("name", ""),
                    description=form.get("description", ""),
                    now=datetime.now(UTC),
                )
        except EchelonError as exc:
            segment = None
            if segment_id is not None:
                segment = get_segment(
                    console.engine, workspace_id=page.workspace_id, segment=segment_id
                )
            return _builder(
                console,
                request,
                page,
                segment,
                combinator,
                rows,
                json_text,
                console.word(request, exc),
                name=form.get("name", ""),
                description=form.get("description", ""),
            )
        return console.redirect(f"/segments/view?id={saved.id}")

    @router.get("/segments/view")
    def view(request: Request, id: int, after_id: int = 0) -> Response:
        page = console.page(request, "segments:read")
        segment = get_segment(console.engine, workspace_id=page.workspace_id, segment=id)
        return _view(console, request, page, segment, after_id=after_id)

    @router.post("/segments/delete")
    def delete(request: Request) -> Response:
        page = console.page(request, "segments:write")
        form = console.form_text(request)
        segment = get_segment(
            console.engine, workspace_id=page.workspace_id, segment=_id(form.get("id", ""))
        )
        try:
            delete_segment(console.engine, workspace_id=page.workspace_id, segment=segment.id)
        except SegmentInUse as exc:
            return _view(
                console, request, page, segment, message=exc.message, status_code=exc.http_status
            )
        console.audit(
            page,
            "segment.delete",
            f"segment:{segment.id}",
            {"name": segment.name, "definition": segment.definition},
        )
        return console.redirect("/segments?done=deleted")


def _id(text: str) -> int:
    """A posted segment id; anything else names no segment (0 is none's id)."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else 0


def _view(
    console: Console,
    request: Request,
    page: Page,
    segment: Segment,
    *,
    after_id: int = 0,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    now = datetime.now(UTC)
    counted = count_segment(
        console.engine, workspace_id=page.workspace_id, segment=segment.id, now=now
    )
    members = list_members(
        console.engine,
        workspace_id=page.workspace_id,
        segment=segment.id,
        now=now,
        after_id=max(after_id, 0),
        limit=MEMBERS_PAGE,
    )
    return console.render(
        request,
        "segments/view.html",
        {
            "segment": segment,
            "count": counted,
            "members": members,
            "next_after_id": members[-1].id if len(members) == MEMBERS_PAGE else None,
            "definition": definition_text(segment.definition),
            "message": message,
            **breakdown(counted, page.t),
        },
        page=page,
        status_code=status_code,
    )


def _definition(combinator: str, rows: list[Row], json_text: str | None) -> Any:
    if json_text is not None:
        return parse_definition_text(json_text)
    return definition_from_rows(combinator, rows)


def _count(
    console: Console,
    request: Request,
    page: Page,
    combinator: str,
    rows: list[Row],
    json_text: str | None,
) -> dict[str, Any]:
    """The live count of the form's definition, or why it cannot be counted."""
    try:
        definition = _definition(combinator, rows, json_text)
        parse_definition(definition)
        counted = count_segment(
            console.engine,
            workspace_id=page.workspace_id,
            definition=definition,
            now=datetime.now(UTC),
        )
    except EchelonError as exc:
        return {"total": None, "message": console.word(request, exc)}
    return {"total": counted.total, "message": None, **breakdown(counted, page.t)}


def _builder_context(
    console: Console,
    page: Page,
    combinator: str,
    rows: list[Row],
    json_text: str | None,
) -> dict[str, Any]:
    return {
        "combinator": combinator,
        "rows": rows,
        "json_text": json_text,
        "kinds": list(KIND_FIELDS),
        "kind_fields": KIND_FIELDS,
        "choices": CHOICES,
        "attribute_fields": ATTRIBUTE_FIELDS,
        "carriers": [c.value for c in Carrier],
        "event_types": BUILTIN_EVENT_TYPES,
        "saved_segments": list_segments(console.engine, workspace_id=page.workspace_id),
    }


def _builder(
    console: Console,
    request: Request,
    page: Page,
    segment: Segment | None,
    combinator: str,
    rows: list[Row],
    json_text: str | None,
    message: str | None,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Response:
    context = _builder_context(console, page, combinator, rows, json_text)
    context.update(
        segment=segment,
        name=name if name is not None else (segment.name if segment else ""),
        description=(
            description
            if description is not None
            else (segment.description or "" if segment else "")
        ),
        message=message,
        oob=False,
        count=_count(console, request, page, combinator, rows, json_text),
    )
    return console.render(request, "segments/builder.html", context, page=page)
