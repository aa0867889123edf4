"""One claimed batch of enrolments, moved step by step inside the runner's
transaction: opt-outs, goals and exit events first; then rounds in which every
enrolment still due takes one step — the round's sends planned together through the
gate, the facts branches need read a group at a time — until each has to wait or is
done; then every enrolment's new place and the steps' counts are written.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection

from echelon.compliance.policy import load_settings
from echelon.compliance.rules import QuietHours
from echelon.content.preview import ContactValues
from echelon.content.templates import ApprovedTemplate
from echelon.journeys import facts, queries
from echelon.journeys.facts import ContactRow
from echelon.journeys.models import (
    BranchStep,
    Clicked,
    Converted,
    EventCondition,
    InSegment,
    JourneyDefinition,
    Matches,
    Replied,
    SendStep,
    WaitForStep,
)
from echelon.journeys.queries import Due
from echelon.journeys.rules import EventFacts, Go, Leave, Send, Wait, decide, event_matches
from echelon.journeys.sending import Planned, StepSend, Templates, plan_step_messages
from echelon.segments.compiler import Scope, segment_predicate
from echelon.segments.service import live_segment_in

log = logging.getLogger(__name__)

# A step whose template cannot be used now (not approved, no signature) tries again.
HOLD = timedelta(minutes=15)
# Variables the planning supplies itself (not read from the contact).
_SUPPLIED = frozenset({"link", "coupon", "event"})


@dataclass
class PassSummary:
    """What one pass did."""

    entered: int = 0
    exited: Counter[str] = field(default_factory=Counter)
    woken: int = 0
    advanced: int = 0
    messages: Counter[str] = field(default_factory=Counter)

    @property
    def work(self) -> int:
        return self.entered + self.exited.total() + self.woken + self.advanced

    def add(self, other: PassSummary) -> None:
        self.entered += other.entered
        self.exited.update(other.exited)
        self.woken += other.woken
        self.advanced += other.advanced
        self.messages.update(other.messages)


@dataclass
class _State:
    """An enrolment as the batch moves it."""

    due: Due
    step: str
    waiting_since: datetime | None
    next_run_at: datetime
    status: str = "active"
    reason: str | None = None
    finished_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    def finish(self, status: str, reason: str, now: datetime) -> None:
        self.status, self.reason, self.finished_at = status, reason, now


class Batch:
    """A claimed batch of one workspace, moved step by step in the caller's
    transaction: each round, every enrolment still due takes one step; the round's
    sends are planned together; facts for branches are read a group at a time."""

    def __init__(
        self,
        definitions: dict[int, JourneyDefinition],
        conn: Connection,
        workspace_id: int,
        rows: list[Due],
        now: datetime,
        summary: PassSummary,
    ) -> None:
        self._definitions = definitions
        self._conn = conn
        self._ws = workspace_id
        self._now = now
        self._summary = summary
        self._states = [_State(row, row.step, row.waiting_since, row.next_run_at) for row in rows]
        self._reached: Counter[tuple[int, str]] = Counter()
        self._values = ContactValues(())
        self._templates = Templates(conn, workspace_id)
        settings, timezone = load_settings(conn, workspace_id)
        self._timezone = timezone
        self._quiet_hours: QuietHours = settings.policy(timezone).quiet_hours

    def run(self) -> None:
        names = {
            step.template
            for version_id in {s.due.version_id for s in self._states}
            for step in self._definitions[version_id].steps
            if isinstance(step, SendStep)
        }
        # Only what the templates read is read of each contact (the planner's way).
        wanted: set[str] = set()
        for template in map(self._templates.get, names):
            if isinstance(template, ApprovedTemplate):
                wanted |= template.compiled.variables
        self._values = ContactValues(wanted - _SUPPLIED)
        contacts = facts.contact_rows(
            self._conn, self._ws, {s.due.contact_id for s in self._states}, self._values
        )
        self._end_early(contacts)
        due = [s for s in self._states if s.active]
        for _ in range(1 + max(len(d.steps) for d in self._definitions.values())):
            if not due:
                break
            due = self._round(due, contacts)
        changes = [
            (
                s.due.id,
                s.status,
                s.step,
                s.next_run_at if s.active else None,
                s.waiting_since if s.active else None,
                s.reason,
                s.finished_at,
                self._now,
            )
            for s in self._states
        ]
        queries.write_enrolments(self._conn, changes)
        queries.count_steps(self._conn, workspace_id=self._ws, counts=self._reached, now=self._now)

    def _end_early(self, contacts: dict[int, ContactRow]) -> None:
        """Opt-outs, goals and exit events take contacts out before any step runs."""
        now, summary = self._now, self._summary
        opted = facts.opted_out(self._conn, self._ws, {c[0][1] for c in contacts.values()})
        for state in self._states:
            contact = contacts.get(state.due.contact_id)
            if contact is not None and contact[0][1] in opted:
                state.finish("exited", "opt_out", now)
                summary.exited["opt_out"] += 1
        watched = [
            s
            for s in self._states
            if s.active and (self._definition(s).goal is not None or self._definition(s).exit_when)
        ]
        if not watched:
            return
        types = {c.event for s in watched for c in ends(self._definition(s))}
        rows = facts.events_of(
            self._conn,
            self._ws,
            {s.due.contact_id for s in watched},
            types,
            since=min(s.due.entered_at for s in watched),
            until=now,
        )
        by_contact: dict[int, list[tuple[Any, EventFacts]]] = defaultdict(list)
        for row in rows:
            by_contact[row.contact_id].append((row, event_facts(row)))
        for state in watched:
            seen = [
                event
                for row, event in by_contact[state.due.contact_id]
                if row.occurred_at >= state.due.entered_at
                and row.id != state.due.context.get("event_id")
            ]
            reason = ending(self._definition(state), seen)
            if reason is not None:
                state.finish("exited", reason, now)
                summary.exited[reason] += 1

    def _round(self, due: list[_State], contacts: dict[int, ContactRow]) -> list[_State]:
        now = self._now
        happened = self._conditions(due)
        sends: list[tuple[_State, Send]] = []
        moved: list[_State] = []
        for state in due:
            outcome = decide(
                self._definition(state),
                state.step,
                enrolment_id=state.due.id,
                waiting_since=state.waiting_since,
                happened=happened.get(state.due.id, False),
                now=now,
                timezone=self._timezone,
                quiet_hours=self._quiet_hours,
            )
            if isinstance(outcome, Go):
                self._move(state, outcome.step)
                moved.append(state)
            elif isinstance(outcome, Send):
                sends.append((state, outcome))
            elif isinstance(outcome, Wait):
                state.waiting_since = state.waiting_since or now
                state.next_run_at = outcome.until
            else:
                assert isinstance(outcome, Leave)
                state.finish("completed", outcome.reason, now)
        planned = plan_step_messages(
            self._conn,
            workspace_id=self._ws,
            sends=[
                StepSend(
                    state.due.id,
                    state.due.journey_id,
                    state.due.contact_id,
                    state.step,
                    send.template,
                    state.due.context,
                )
                for state, send in sends
            ],
            contacts=contacts,
            values=self._values,
            templates=self._templates,
            now=now,
        )
        for (state, send), result in zip(sends, planned, strict=True):
            self._after_send(state, send, result)
            moved.append(state)
        return [s for s in moved if s.active and s.next_run_at <= now]

    def _after_send(self, state: _State, send: Send, result: Planned) -> None:
        if result.status == "held":
            log.warning(
                "journey step %s waits: template %s cannot be used (%s)",
                state.step,
                send.template,
                result.block_reason,
            )
            state.next_run_at = self._now + HOLD
            self._summary.messages["held"] += 1
            return
        self._summary.messages[result.status] += 1
        self._move(state, send.step)
        if state.active:
            state.next_run_at = max(self._now, result.due_at)

    def _move(self, state: _State, step: str | None) -> None:
        if step is None:
            state.finish("completed", "end", self._now)
            return
        state.step, state.waiting_since, state.next_run_at = step, None, self._now
        self._reached[state.due.journey_id, step] += 1

    def _definition(self, state: _State) -> JourneyDefinition:
        return self._definitions[state.due.version_id]

    # -- facts --------------------------------------------------------------------------
    def _conditions(self, due: list[_State]) -> dict[int, bool]:
        """For each enrolment at a branch, or waiting at a ``wait_for``: whether its
        condition holds / what it waits for happened. Read a group at a time."""
        groups: dict[tuple[int, str], list[_State]] = defaultdict(list)
        for state in due:
            step = self._definition(state).step(state.step)
            if isinstance(step, BranchStep) or (
                isinstance(step, WaitForStep) and state.waiting_since is not None
            ):
                groups[state.due.version_id, state.step].append(state)
        found: dict[int, bool] = {}
        for (version_id, step_id), states in groups.items():
            step = self._definitions[version_id].step(step_id)
            if isinstance(step, WaitForStep):
                if step.event is not None:
                    found.update(
                        self._events_since(
                            states, EventCondition(event=step.event, where=step.where), True
                        )
                    )
                else:
                    found.update(self._clicked(states, since_wait=True))
                continue
            assert isinstance(step, BranchStep)
            condition = step.condition
            if isinstance(condition, Clicked):
                found.update(self._clicked(states, since_wait=False))
            elif isinstance(condition, Replied):
                found.update(self._replied(states))
            elif isinstance(condition, Converted):
                found.update(
                    self._events_since(
                        states, EventCondition(event=condition.event, where=condition.where), False
                    )
                )
            else:
                found.update(self._members(states, condition))
        return found

    def _events_since(
        self, states: list[_State], condition: EventCondition, since_wait: bool
    ) -> dict[int, bool]:
        def since(state: _State) -> datetime:
            moment = state.waiting_since if since_wait else state.due.entered_at
            assert moment is not None
            return moment

        rows = facts.events_of(
            self._conn,
            self._ws,
            {s.due.contact_id for s in states},
            {condition.event},
            since=min(since(s) for s in states),
            until=self._now,
        )
        by_contact: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_contact[row.contact_id].append(row)
        return {
            s.due.id: any(
                row.occurred_at >= since(s)
                and row.id != s.due.context.get("event_id")
                and event_matches(condition.where, event_facts(row))
                for row in by_contact[s.due.contact_id]
            )
            for s in states
        }

    def _clicked(self, states: list[_State], *, since_wait: bool) -> dict[int, bool]:
        """Waiting: a click on any of the enrolment's messages since the wait began;
        a branch: a click on its last message."""
        sent = facts.journey_messages(self._conn, [s.due.id for s in states])
        by_enrolment: dict[int, list[int]] = defaultdict(list)
        for row in sent:
            by_enrolment[row.enrolment_id].append(row.id)
        watched = {
            s.due.id: (ids if since_wait else ids[-1:])
            for s in states
            if (ids := by_enrolment.get(s.due.id))
        }
        clicked: dict[int, list[datetime]] = defaultdict(list)
        for row in facts.human_clicks(
            self._conn, self._ws, [m for ids in watched.values() for m in ids]
        ):
            clicked[row.message_id].append(row.clicked_at)
        result = {}
        for state in states:
            times = [at for m in watched.get(state.due.id, []) for at in clicked[m]]
            if since_wait:
                assert state.waiting_since is not None
                times = [at for at in times if at >= state.waiting_since]
            result[state.due.id] = bool(times)
        return result

    def _replied(self, states: list[_State]) -> dict[int, bool]:
        last: dict[int, int] = {}
        for row in facts.journey_messages(self._conn, [s.due.id for s in states]):
            last[row.enrolment_id] = row.id
        answered = facts.replied_to(self._conn, self._ws, last.values())
        return {s.due.id: last.get(s.due.id) in answered for s in states}

    def _members(self, states: list[_State], condition: InSegment | Matches) -> dict[int, bool]:
        if isinstance(condition, InSegment):
            assert isinstance(condition.segment, int)
            predicate = segment_predicate_of(self._conn, self._ws, condition.segment, self._now)
        else:
            scope = Scope(self._ws, self._now, self._timezone)
            predicate = segment_predicate(condition.node, scope)
        members = facts.member_ids(
            self._conn, self._ws, predicate, {s.due.contact_id for s in states}
        )
        return {s.due.id: s.due.contact_id in members for s in states}


# ---------------------------------------------------------------- shared with the runner


def ends(definition: JourneyDefinition) -> list[EventCondition]:
    return ([definition.goal] if definition.goal is not None else []) + definition.exit_when


def ending(definition: JourneyDefinition, seen: Sequence[EventFacts]) -> str | None:
    """``goal`` or ``exit_event`` if an event seen since entering ends the enrolment."""
    goal = definition.goal
    if goal is not None and any(
        f.type == goal.event and event_matches(goal.where, f) for f in seen
    ):
        return "goal"
    if any(
        f.type == c.event and event_matches(c.where, f) for c in definition.exit_when for f in seen
    ):
        return "exit_event"
    return None


def event_facts(row: Any) -> EventFacts:
    return EventFacts(
        type=row.type,
        amount_fen=row.amount_fen,
        order_id=row.order_id,
        category=row.category,
        coupon_code=row.coupon_code,
        properties=row.properties or {},
    )


def segment_predicate_of(
    conn: Connection, workspace_id: int, segment_id: int, now: datetime
) -> ColumnElement[bool]:
    live = live_segment_in(conn, workspace_id=workspace_id, segment_id=segment_id, now=now)
    scope = Scope(workspace_id, now, live.timezone, live.segments)
    return segment_predicate(live.definition, scope)
