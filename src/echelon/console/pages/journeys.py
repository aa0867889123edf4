"""Journeys: each journey as a flow of its steps with per-step counts; new ones copied
from the built-in journeys (their templates created for review); timings, templates,
branches and split shares edited as a new version (or the whole definition as JSON);
activate, pause, and put one contact in by hand to try it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from echelon.console import charts
from echelon.console.forms import definition_text, parse_definition_text
from echelon.console.journeys_view import edited, flow
from echelon.console.web import Console
from echelon.content.templates import list_templates
from echelon.journeys.builtins import BUILTINS
from echelon.journeys.service import (
    activate_journey,
    create_from_builtin,
    edit_journey,
    enrol_contact,
    journey_stats,
    list_journeys,
    pause_journey,
    show_journey,
)

DONE: Final = frozenset({"created", "saved", "activated", "paused", "enrolled", "not_enrolled"})


@dataclass(frozen=True, slots=True)
class JourneyLine:
    name: str
    status: str
    enrolled: int


def running_journeys(engine: Engine, *, workspace_id: int) -> list[JourneyLine]:
    """The workspace's active journeys with how many contacts are inside each."""
    return [
        JourneyLine(
            journey.name,
            journey.status,
            journey_stats(engine, workspace_id=workspace_id, name=journey.name)["enrolments"][
                "active"
            ],
        )
        for journey in list_journeys(engine, workspace_id=workspace_id)
        if journey.status == "active"
    ]


def register(router: APIRouter, console: Console) -> None:
    @router.get("/journeys")
    def journeys(request: Request) -> Response:
        page = console.page(request, "campaigns:read")
        return console.render(
            request,
            "journeys/list.html",
            {
                "journeys": list_journeys(console.engine, workspace_id=page.workspace_id),
                "builtins": list(BUILTINS.values()),
            },
            page=page,
        )

    @router.post("/journeys/builtin")
    def from_builtin(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        page.require("templates:write")
        form = console.form_text(request)
        journey, _templates = create_from_builtin(
            console.engine,
            workspace_id=page.workspace_id,
            key=form.get("key", ""),
            name=form.get("name", "").strip() or None,
            actor=page.principal.actor,
            now=datetime.now(UTC),
        )
        return _to_view(console, journey.name, "created")

    @router.get("/journeys/view")
    def view(request: Request, name: str, done: str = "") -> Response:
        page = console.page(request, "campaigns:read")
        return console.render(
            request,
            "journeys/view.html",
            _view(console, page.workspace_id, name, done, page.t),
            page=page,
        )

    @router.post("/journeys/edit")
    def edit(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        form = console.form_text(request)
        name = form.get("name", "")
        shown = show_journey(
            console.engine, workspace_id=page.workspace_id, name=name, now=datetime.now(UTC)
        )
        if form.get("mode") == "json":
            definition = parse_definition_text(form.get("definition", ""))
        else:
            definition = edited(shown["definition"], form)
        edit_journey(
            console.engine,
            workspace_id=page.workspace_id,
            name=name,
            definition=definition,
            now=datetime.now(UTC),
        )
        return _to_view(console, name, "saved")

    @router.post("/journeys/activate")
    def activate(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        name = console.form_text(request).get("name", "")
        activate_journey(
            console.engine, workspace_id=page.workspace_id, name=name, now=datetime.now(UTC)
        )
        console.audit(page, "journey.activate", f"journey:{name}", {})
        return _to_view(console, name, "activated")

    @router.post("/journeys/pause")
    def pause(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        name = console.form_text(request).get("name", "")
        held = pause_journey(
            console.engine, workspace_id=page.workspace_id, name=name, now=datetime.now(UTC)
        )
        console.audit(page, "journey.pause", f"journey:{name}", {"messages": held})
        return _to_view(console, name, "paused")

    @router.post("/journeys/enrol")
    def enrol(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        form = console.form_text(request)
        name = form.get("name", "")
        entered = enrol_contact(
            console.engine,
            workspace_id=page.workspace_id,
            name=name,
            phone=form.get("phone", ""),
            now=datetime.now(UTC),
        )
        return _to_view(console, name, "enrolled" if entered else "not_enrolled")


def _view(console: Console, workspace_id: int, name: str, done: str, t: Any) -> dict[str, Any]:
    shown = show_journey(
        console.engine, workspace_id=workspace_id, name=name, now=datetime.now(UTC)
    )
    stats = journey_stats(console.engine, workspace_id=workspace_id, name=name)
    steps = flow(shown["definition"], stats["steps"])
    labels = [s.id for s in steps]
    step_chart = charts.bar_chart(
        labels,
        {
            t("journey.entered"): [s.counts.get("entered", 0) for s in steps],
            t("metric.sent"): [s.counts.get("sent", 0) for s in steps],
            t("metric.clicks"): [s.counts.get("clicked", 0) for s in steps],
            t("metric.conversions"): [s.counts.get("converted", 0) for s in steps],
        },
    )
    return {
        "shown": shown,
        "journey": shown["journey"],
        "stats": stats,
        "steps": steps,
        "trigger": shown["definition"]["trigger"],
        "goal": shown["definition"].get("goal"),
        "step_chart": step_chart,
        "json_text": definition_text(shown["definition"]),
        "template_names": [
            tpl.name for tpl in list_templates(console.engine, workspace_id=workspace_id)
        ],
        "done": done if done in DONE else "",
    }


def _to_view(console: Console, name: str, done: str) -> Response:
    return console.redirect(f"/journeys/view?name={quote(name, safe='')}&done={done}")
