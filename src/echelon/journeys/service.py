"""Journey service: create (from JSON or a built-in), edit (a new version), show, list,
activate, pause, enrol one contact by hand, and stats. One transaction per call.

Versions: editing a journey adds a version; new entries follow the latest, while
contacts already inside finish on the version they entered (their enrolment keeps
its version). A journey becomes ``active`` only when every template it sends is
approved and every segment it names exists.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from echelon.audience.phone import normalise_phone
from echelon.audience.queries import ensure_contact
from echelon.content.review import submit_template
from echelon.content.templates import TemplateExists, approved_template_in, create_template
from echelon.db.bulk import json_text
from echelon.errors import EchelonError, InvalidInput, NotFound
from echelon.journeys import queries
from echelon.journeys.builtins import get_builtin
from echelon.journeys.models import (
    HolidayTrigger,
    JourneyDefinition,
    definition_json,
    parse_journey,
)
from echelon.journeys.rules import may_enter, next_holiday_trigger
from echelon.segments.service import segment_id_in

STATUS_LABELS = {"draft": "草稿", "active": "运行中", "paused": "已暂停"}
EXIT_LABELS = {
    "end": "走完全程",
    "exit_step": "到达退出步骤",
    "goal": "达成目标",
    "exit_event": "退出事件",
    "opt_out": "退订",
}
_SENT = ("submitted", "delivered", "undelivered", "expired", "rejected", "unknown")
_PENDING = ("planned", "queued", "submitting")


class JourneyNotFound(NotFound):
    code = "journey_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"旅程「{name}」不存在")


class JourneyStateError(EchelonError):
    code = "journey_state"
    http_status = 409


@dataclass(frozen=True, slots=True)
class Journey:
    id: int
    name: str
    description: str | None
    status: str
    version: int
    builtin: str | None
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None


def create_journey(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    definition: object,
    description: str | None = None,
    builtin: str | None = None,
    now: datetime,
) -> Journey:
    """A draft journey at version 1; the definition is validated and its segments
    resolved to ids (templates are checked on activation)."""
    name = _valid_name(name)
    description = _valid_description(description)
    parsed = parse_journey(definition)
    with engine.begin() as conn:
        if queries.journey_row(conn, workspace_id, name) is not None:
            raise InvalidInput(f"旅程「{name}」已存在：换一个名称，或用 journeys edit 修改它")
        stored = _resolved(conn, workspace_id, parsed)
        journey_id = queries.insert_journey(
            conn,
            workspace_id=workspace_id,
            name=name,
            description=description,
            status="draft",
            version=1,
            builtin=builtin,
            created_at=now,
            updated_at=now,
        )
        queries.insert_version(
            conn,
            workspace_id=workspace_id,
            journey_id=journey_id,
            version=1,
            definition=definition_json(stored),
            now=now,
        )
        return _get(conn, workspace_id, name)


def create_from_builtin(
    engine: Engine,
    *,
    workspace_id: int,
    key: str,
    name: str | None = None,
    actor: str,
    now: datetime,
) -> tuple[Journey, dict[str, str]]:
    """A draft copy of a built-in journey, with each of its templates created (and
    submitted for review) unless the workspace has one of that name already: the
    journey and each template's review status."""
    builtin = get_builtin(key)
    templates: dict[str, str] = {}
    for template in builtin.templates:
        try:
            create_template(
                engine,
                workspace_id=workspace_id,
                name=template.name,
                kind=template.kind,
                body=template.body,
                actor=actor,
                now=now,
            )
        except TemplateExists:
            templates[template.name] = "exists"
            continue
        try:
            submit_template(
                engine, workspace_id=workspace_id, name=template.name, actor=actor, now=now
            )
            templates[template.name] = "pending"
        except EchelonError:
            templates[template.name] = "draft"  # e.g. no signature yet: submit it later
    journey = create_journey(
        engine,
        workspace_id=workspace_id,
        name=name or builtin.name,
        definition=builtin.definition,
        description=builtin.description,
        builtin=builtin.key,
        now=now,
    )
    return journey, templates


def edit_journey(
    engine: Engine, *, workspace_id: int, name: str, definition: object, now: datetime
) -> Journey:
    """A new version; a running journey's new version must be runnable at once."""
    parsed = parse_journey(definition)
    with engine.begin() as conn:
        journey = _get(conn, workspace_id, name, lock=True)
        stored = _resolved(conn, workspace_id, parsed)
        if journey.status == "active":
            _check_runnable(conn, workspace_id, stored)
        version = journey.version + 1
        queries.insert_version(
            conn,
            workspace_id=workspace_id,
            journey_id=journey.id,
            version=version,
            definition=definition_json(stored),
            now=now,
        )
        queries.update_journey(conn, journey.id, version=version, updated_at=now)
        return _get(conn, workspace_id, name)


def activate_journey(engine: Engine, *, workspace_id: int, name: str, now: datetime) -> Journey:
    """Start (or resume) the journey: from now on its trigger enters contacts and the
    runner moves them. Resuming releases the messages held by ``pause_journey``."""
    with engine.begin() as conn:
        journey = _get(conn, workspace_id, name, lock=True)
        if journey.status == "active":
            raise JourneyStateError(f"旅程「{name}」已在运行")
        definition = _current(conn, journey)
        _check_runnable(conn, workspace_id, definition)
        # What happens from now on triggers it; nothing before is replayed.
        for source, top in queries.top_ids(conn).items():
            queries.start_cursor(conn, workspace_id, source, top, now)
        if journey.status == "paused":
            queries.move_messages(conn, journey.id, from_status="planned", to="queued", now=now)
        queries.update_journey(conn, journey.id, status="active", activated_at=now, updated_at=now)
        return _get(conn, workspace_id, name)


def pause_journey(engine: Engine, *, workspace_id: int, name: str, now: datetime) -> int:
    """Stop entering and moving contacts, and hold the journey's queued messages;
    returns how many messages were held."""
    with engine.begin() as conn:
        journey = _get(conn, workspace_id, name, lock=True)
        if journey.status != "active":
            raise JourneyStateError(
                f"旅程「{name}」{STATUS_LABELS[journey.status]}，只有运行中的旅程可以暂停"
            )
        held = queries.move_messages(conn, journey.id, from_status="queued", to="planned", now=now)
        queries.update_journey(conn, journey.id, status="paused", updated_at=now)
        return held


def enrol_contact(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    phone: str,
    context: dict[str, Any] | None = None,
    now: datetime,
) -> bool:
    """Put one contact into a running journey by hand (to try it on your own phone),
    as its trigger would — the re-entry policy still applies. False if it refused."""
    number = normalise_phone(phone)
    with engine.begin() as conn:
        journey = _get(conn, workspace_id, name)
        if journey.status != "active":
            raise JourneyStateError(f"旅程「{name}」{STATUS_LABELS[journey.status]}，请先启用")
        definition = _current(conn, journey)
        contact_id = ensure_contact(conn, workspace_id=workspace_id, phone=number, now=now)
        last, inside = queries.entry_history(conn, journey.id, [contact_id]).get(
            contact_id, (None, False)
        )
        if not may_enter(definition.reentry, active=inside, last_entered=last, now=now):
            return False
        version_id = queries.version_rows(conn, journey.id)[-1].id
        queries.insert_enrolments(
            conn,
            [
                (
                    workspace_id, journey.id, version_id, contact_id,
                    f"manual:{contact_id}:{int(now.timestamp() * 1000)}", "active",
                    definition.first_step, now, json_text(context or {}), now, now,
                )
            ],
        )  # fmt: skip
        return True


def list_journeys(engine: Engine, *, workspace_id: int) -> list[Journey]:
    with engine.connect() as conn:
        return [_journey(row) for row in queries.journey_rows(conn, workspace_id)]


def show_journey(
    engine: Engine, *, workspace_id: int, name: str, version: int | None = None, now: datetime
) -> dict[str, Any]:
    """The journey, its versions, one version's definition (the latest by default),
    how many contacts are inside, and its templates' review status."""
    with engine.connect() as conn:
        journey = _get(conn, workspace_id, name)
        versions = queries.version_rows(conn, journey.id)
        chosen = version or journey.version
        row = next((v for v in versions if v.version == chosen), None)
        if row is None:
            raise NotFound(f"旅程「{name}」没有第 {chosen} 版（共 {len(versions)} 版）")
        definition = parse_journey(row.definition)
        counts = Counter[str]()
        for status, _, _, n in queries.enrolment_counts(conn, journey.id):
            counts[status] += n
        templates = {}
        for template in definition.templates():
            try:
                approved_template_in(conn, workspace_id=workspace_id, name=template)
                templates[template] = "approved"
            except EchelonError as exc:
                templates[template] = exc.message
        timezone = queries.workspace_timezone(conn, workspace_id)
    shown: dict[str, Any] = {
        "journey": _journey_json(journey),
        "versions": [{"version": v.version, "created_at": v.created_at} for v in versions],
        "version": chosen,
        "definition": row.definition,
        "enrolments": dict(counts),
        "templates": templates,
    }
    trigger = definition.trigger
    if isinstance(trigger, HolidayTrigger):
        today = now.astimezone(ZoneInfo(timezone)).date()
        day = next_holiday_trigger(trigger, today)
        shown["next_trigger"] = None if day is None else f"{day.isoformat()} {trigger.at:%H:%M}"
    return shown


def journey_stats(engine: Engine, *, workspace_id: int, name: str) -> dict[str, Any]:
    """Per step: entered, waiting, messages (sent, delivered, blocked by reason),
    clicked, converted (orders credited to its messages), exited by reason."""
    with engine.connect() as conn:
        journey = _get(conn, workspace_id, name)
        versions = queries.version_rows(conn, journey.id)
        definitions = {v.id: parse_journey(v.definition) for v in versions}
        latest = definitions[versions[-1].id]
        entered: Counter[str] = Counter(queries.step_counts(conn, journey.id))
        for version_id, n in queries.first_step_entries(conn, journey.id).items():
            entered[definitions[version_id].first_step] += n
        enrolments = queries.enrolment_counts(conn, journey.id)
        messages = queries.message_counts(conn, journey.id)
        clicked = queries.click_counts(conn, journey.id)
        converted = queries.conversion_counts(conn, journey.id)
    order = [s.id for s in latest.steps]
    kinds = {s.id: s.type for d in definitions.values() for s in d.steps}
    for d in definitions.values():
        order.extend(s.id for s in d.steps if s.id not in order)
    steps: dict[str, dict[str, Any]] = {
        step: {
            "step": step,
            "type": kinds[step],
            "entered": entered.get(step, 0),
            "waiting": 0,
            "messages": 0,
            "pending": 0,
            "sent": 0,
            "delivered": 0,
            "blocked": {},
            "clicked": clicked.get(step, 0),
            "converted": converted.get(step, 0),
            "exited": {},
        }
        for step in order
    }
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for status, step, reason, n in enrolments:
        totals[status] += n
        if step not in steps:
            continue
        if status == "active":
            steps[step]["waiting"] += n
        else:
            reasons[reason] += n
            exited = steps[step]["exited"]
            exited[reason] = exited.get(reason, 0) + n
    blocked_total: dict[str, int] = defaultdict(int)
    for step, status, reason, n in messages:
        if step not in steps:
            continue
        row = steps[step]
        row["messages"] += n
        if status == "blocked":
            row["blocked"][reason] = row["blocked"].get(reason, 0) + n
            blocked_total[reason] += n
        elif status in _SENT:
            row["sent"] += n
        elif status in _PENDING:
            row["pending"] += n
        if status == "delivered":
            row["delivered"] += n
    return {
        "journey": journey.name,
        "status": journey.status,
        "version": journey.version,
        "enrolments": {s: totals.get(s, 0) for s in ("active", "completed", "exited")},
        "finished": dict(reasons),
        "blocked": dict(blocked_total),
        "steps": list(steps.values()),
    }


# ---------------------------------------------------------------- helpers


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise InvalidInput("旅程名称须为 1–100 个字，且不含换行")
    return name


def _valid_description(description: str | None) -> str | None:
    if description is None:
        return None
    description = description.strip()
    if len(description) > 500:
        raise InvalidInput("旅程说明最多 500 个字")
    return description or None


def _resolved(
    conn: Connection, workspace_id: int, definition: JourneyDefinition
) -> JourneyDefinition:
    """The definition with each segment it names as that segment's id."""
    refs = definition.segments()
    if not refs:
        return definition
    ids = {ref: segment_id_in(conn, workspace_id=workspace_id, segment=ref) for ref in refs}
    return definition.with_segment_ids(ids)


def _check_runnable(conn: Connection, workspace_id: int, definition: JourneyDefinition) -> None:
    """Every template approved and every segment present, or a clear error."""
    for template in definition.templates():
        approved_template_in(conn, workspace_id=workspace_id, name=template)
    for segment in definition.segments():
        segment_id_in(conn, workspace_id=workspace_id, segment=segment)


def _current(conn: Connection, journey: Journey) -> JourneyDefinition:
    latest = queries.version_rows(conn, journey.id)[-1]
    return parse_journey(latest.definition)


def _get(conn: Connection, workspace_id: int, name: str, *, lock: bool = False) -> Journey:
    row = queries.journey_row(conn, workspace_id, name.strip(), lock=lock)
    if row is None:
        raise JourneyNotFound(name.strip())
    return _journey(row)


def _journey(row: Any) -> Journey:
    return Journey(
        id=row.id,
        name=row.name,
        description=row.description,
        status=row.status,
        version=row.version,
        builtin=row.builtin,
        created_at=row.created_at,
        updated_at=row.updated_at,
        activated_at=row.activated_at,
    )


def _journey_json(journey: Journey) -> dict[str, Any]:
    return {
        "name": journey.name,
        "description": journey.description,
        "status": journey.status,
        "version": journey.version,
        "builtin": journey.builtin,
        "created_at": journey.created_at,
        "updated_at": journey.updated_at,
        "activated_at": journey.activated_at,
    }
