"""The journey runner: triggers into enrolments, enrolments through their steps.

A pass (``JourneyRunner.advance``), for every active journey:

1. reads what happened since the last pass, per workspace and in id order from its
   cursors: opt-outs (every journey of that contact ends), events (entries; goals and
   exit events end enrolments; ``wait_for`` waiters are woken) and clicks (``wait_for``
   a click wakes) — each chunk and its cursor move commit together;
2. runs the scheduled triggers that are due (segment entries every minute; dates,
   inactivity and holidays once a day at their time);
3. claims due enrolments in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
   single writer) and moves each through its steps until it has to wait. Within the
   batch's transaction (``batch.Batch``) every step's message is planned through the
   gate (``sending.plan_step_messages``) and every enrolment's new place is written, so a
   crash anywhere leaves both as they were: no step is sent twice, none is skipped.

Time is passed in: ``advance(now)``, so a 30-day journey runs in milliseconds in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from echelon.db.bulk import json_text
from echelon.errors import EchelonError
from echelon.journeys import facts, queries
from echelon.journeys.batch import Batch, PassSummary, ending, event_facts, segment_predicate_of
from echelon.journeys.models import (
    DateTrigger,
    EventTrigger,
    HolidayTrigger,
    InactivityTrigger,
    JourneyDefinition,
    SegmentTrigger,
    WaitForStep,
    parse_journey,
)
from echelon.journeys.queries import ActiveJourney, Due
from echelon.journeys.rules import (
    EventFacts,
    anniversary_years,
    event_matches,
    holiday_occurrence,
    lunar_birthday_keys,
    may_enter,
    scheduled_day,
    solar_birthday_keys,
)

log = logging.getLogger(__name__)

SOURCES = ("opt_outs", "events", "clicks")


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    batch_size: int = 1_000  # enrolments claimed per transaction
    chunk: int = 5_000  # source rows (events, clicks, opt-outs) read per transaction
    segment_interval: timedelta = timedelta(minutes=1)


class JourneyRunner:
    """Runs passes against one database; keeps parsed definitions (versions never
    change) and, on PostgreSQL, what it knows of events still being written."""

    def __init__(self, engine: Engine, options: RunnerOptions | None = None) -> None:
        self._engine = engine
        self._options = options or RunnerOptions()
        self._definitions: dict[int, JourneyDefinition] = {}
        self._horizon = _EventHorizon()
        # Rows written since the statistics were refreshed, and when to refresh them
        # next: a table growing inside a run still looks empty to PostgreSQL's planner.
        self._written = 0
        self._analyze_at = 5_000

    def advance(self, now: datetime, *, limit: int | None = None) -> PassSummary:
        """One pass at ``now``; ``limit``: stop claiming after about that many."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        summary = PassSummary()
        with self._engine.connect() as conn:
            active = queries.active_journeys(conn)
            safe = self._horizon.safe(conn) if active else None
        if not active:
            return summary
        for journey in active:
            self._definition(journey.version_id, journey.definition)
        by_workspace: dict[int, list[ActiveJourney]] = defaultdict(list)
        for journey in active:
            by_workspace[journey.workspace_id].append(journey)
        for workspace_id, journeys in by_workspace.items():
            for source in SOURCES:
                self._read_source(workspace_id, journeys, source, safe, now, summary)
        for journey in active:
            if not isinstance(self._definitions[journey.version_id].trigger, EventTrigger):
                self._scan(journey, now, summary)
        self._advance_due([j.id for j in active], now, summary, limit)
        return summary

    def _grew(self, rows: int) -> None:
        """Count rows written; refresh the statistics whenever the count has doubled."""
        self._written += rows
        if self._written >= self._analyze_at:
            with self._engine.begin() as conn:
                queries.analyze(conn)
            self._analyze_at = self._written * 2

    # -- reading sources ----------------------------------------------------------------
    def _read_source(
        self,
        workspace_id: int,
        journeys: list[ActiveJourney],
        source: str,
        safe: int | None,
        now: datetime,
        summary: PassSummary,
    ) -> None:
        if source == "events" and safe is None:
            return  # PostgreSQL: not yet known which events are all written
        chunk = self._options.chunk
        while True:
            entered_before = summary.entered
            with self._engine.begin() as conn:
                position = queries.lock_cursor(conn, workspace_id, source)
                if position is None:
                    # First read: start from now; what happened before is not replayed.
                    top = queries.top_ids(conn)[source]
                    start = min(top, safe) if source == "events" and safe is not None else top
                    queries.start_cursor(conn, workspace_id, source, start, now)
                    return
                if source == "events":
                    assert safe is not None
                    rows = queries.event_keys_after(
                        conn, workspace_id, after=position, upto=safe, limit=chunk
                    )
                    self._apply_events(conn, workspace_id, journeys, rows, position, now, summary)
                elif source == "clicks":
                    rows = queries.clicks_after(conn, workspace_id, after=position, limit=chunk)
                    self._apply_clicks(conn, rows, now, summary)
                else:
                    rows = queries.opt_outs_after(conn, workspace_id, after=position, limit=chunk)
                    contact_ids = {row.contact_id for row in rows if row.contact_id is not None}
                    inside = [
                        r.id for r in queries.active_enrolments(conn, workspace_id, contact_ids)
                    ]
                    if inside:
                        summary.exited["opt_out"] += queries.finish_enrolments(
                            conn, inside, status="exited", reason="opt_out", now=now
                        )
                if rows:
                    queries.move_cursor(conn, workspace_id, source, rows[-1].id, now)
            self._grew(summary.entered - entered_before)
            if len(rows) < chunk:
                return

    def _apply_events(
        self,
        conn: Connection,
        workspace_id: int,
        journeys: list[ActiveJourney],
        keys: Sequence[Any],
        after: int,
        now: datetime,
        summary: PassSummary,
    ) -> None:
        """A chunk of events (``keys``: id, contact, type; ids above ``after``): first
        what they end or wake for contacts already inside, then who they enter."""
        if not keys:
            return
        upto = keys[-1].id
        enrolled = queries.active_enrolments(conn, workspace_id, {key.contact_id for key in keys})
        if enrolled:
            self._load(conn, {row.version_id for row in enrolled})
            rows = queries.events_between(
                conn,
                workspace_id,
                after=after,
                upto=upto,
                contact_ids={row.contact_id for row in enrolled},
            )
            self._events_inside(conn, enrolled, rows, now, summary)
        types = {key.type for key in keys}
        for journey in journeys:
            trigger = self._definitions[journey.version_id].trigger
            if not isinstance(trigger, EventTrigger) or trigger.event not in types:
                continue
            if not trigger.where:  # set-based: one INSERT … SELECT
                reentry = self._definitions[journey.version_id].reentry
                summary.entered += queries.enter_from_events(
                    conn,
                    workspace_id=workspace_id,
                    journey_id=journey.id,
                    version_id=journey.version_id,
                    first_step=self._definitions[journey.version_id].first_step,
                    event_type=trigger.event,
                    after=after,
                    upto=upto,
                    activated_at=journey.activated_at,
                    reentry=reentry.policy,
                    window=reentry.window,
                    now=now,
                )
                continue
            candidates: list[tuple[int, str, dict[str, Any]]] = []
            taken: set[int] = set()
            for row in queries.events_between(
                conn, workspace_id, after=after, upto=upto, event_type=trigger.event
            ):
                if (
                    row.created_at >= journey.activated_at
                    and row.contact_id not in taken
                    and event_matches(trigger.where, event_facts(row))
                ):
                    taken.add(row.contact_id)
                    candidates.append((row.contact_id, f"event:{row.id}", _event_context(row)))
            summary.entered += self._enter(conn, journey, candidates, now)

    def _events_inside(
        self,
        conn: Connection,
        enrolled: Sequence[Any],
        rows: Sequence[Any],
        now: datetime,
        summary: PassSummary,
    ) -> None:
        """Goals and exit events end enrolments; what a ``wait_for`` waits for wakes it."""
        by_contact: dict[int, list[tuple[Any, EventFacts]]] = defaultdict(list)
        for row in rows:
            by_contact[row.contact_id].append((row, event_facts(row)))
        ended: dict[str, list[int]] = {"goal": [], "exit_event": []}
        waking: list[int] = []
        for enrolment in enrolled:
            definition = self._definitions[enrolment.version_id]
            seen = [
                (row, facts)
                for row, facts in by_contact[enrolment.contact_id]
                if row.occurred_at >= enrolment.entered_at
                and row.id != enrolment.context.get("event_id")
            ]
            reason = ending(definition, [facts for _, facts in seen])
            if reason is not None:
                ended[reason].append(enrolment.id)
                continue
            step = definition.step(enrolment.step)
            if (
                isinstance(step, WaitForStep)
                and step.event is not None
                and enrolment.waiting_since is not None
                and any(
                    facts.type == step.event
                    and row.occurred_at >= enrolment.waiting_since
                    and event_matches(step.where, facts)
                    for row, facts in seen
                )
            ):
                waking.append(enrolment.id)
        for reason, ids in ended.items():
            if ids:
                summary.exited[reason] += queries.finish_enrolments(
                    conn, ids, status="exited", reason=reason, now=now
                )
        summary.woken += queries.wake(conn, waking, now)

    def _apply_clicks(
        self, conn: Connection, rows: Sequence[Any], now: datetime, summary: PassSummary
    ) -> None:
        enrolment_ids = {row.enrolment_id for row in rows if row.enrolment_id is not None}
        if not enrolment_ids:
            return
        waiting = queries.waiting_enrolments(conn, enrolment_ids)
        self._load(conn, {row.version_id for row in waiting})
        clicked_at: dict[int, datetime] = {}
        for row in rows:
            if row.enrolment_id is not None:
                earlier = clicked_at.get(row.enrolment_id, row.clicked_at)
                clicked_at[row.enrolment_id] = max(row.clicked_at, earlier)
        waking = [
            row.id
            for row in waiting
            if _waits_for_click(self._definitions[row.version_id], row.step)
            and clicked_at[row.id] >= row.waiting_since
        ]
        summary.woken += queries.wake(conn, waking, now)

    # -- scheduled triggers -------------------------------------------------------------
    def _scan(self, journey: ActiveJourney, now: datetime, summary: PassSummary) -> None:
        trigger = self._definitions[journey.version_id].trigger
        if not self._scan_due(journey, trigger, journey.scanned_at, journey.scanned_day, now):
            return  # as read at the start of the pass: no write transaction for nothing
        try:
            with self._engine.begin() as conn:
                state = queries.lock_journey(conn, journey.id)
                if state is None or not self._scan_due(
                    journey, trigger, state.scanned_at, state.scanned_day, now
                ):
                    return  # another runner scans it, or just did
                if isinstance(trigger, SegmentTrigger):
                    candidates = self._segment_entries(conn, journey, trigger, state, now)
                    queries.update_journey(conn, journey.id, scanned_at=now)
                else:
                    assert isinstance(trigger, DateTrigger | InactivityTrigger | HolidayTrigger)
                    day = scheduled_day(now, trigger.at, journey.timezone, state.scanned_day)
                    assert day is not None
                    candidates = self._daily_entries(conn, journey, trigger, state, day, now)
                    queries.update_journey(conn, journey.id, scanned_day=day, scanned_at=now)
                summary.entered += self._enter(conn, journey, candidates, now)
        except EchelonError as exc:  # a segment deleted since: the journey waits, others run
            log.warning("journey %s (%s): trigger not run: %s", journey.id, journey.name, exc)

    def _scan_due(
        self,
        journey: ActiveJourney,
        trigger: Any,
        scanned_at: datetime | None,
        scanned_day: date | None,
        now: datetime,
    ) -> bool:
        if isinstance(trigger, SegmentTrigger):
            return scanned_at is None or now - scanned_at >= self._options.segment_interval
        return scheduled_day(now, trigger.at, journey.timezone, scanned_day) is not None

    def _segment_entries(
        self,
        conn: Connection,
        journey: ActiveJourney,
        trigger: SegmentTrigger,
        state: Any,
        now: datetime,
    ) -> list[tuple[int, str, dict[str, Any]]]:
        assert isinstance(trigger.segment, int)
        predicate = segment_predicate_of(conn, journey.workspace_id, trigger.segment, now)
        current = facts.member_ids(conn, journey.workspace_id, predicate)
        previous = facts.segment_members_of(conn, journey.id)
        joined, left = current - previous, previous - current
        facts.update_segment_members(
            conn, workspace_id=journey.workspace_id, journey_id=journey.id, joined=joined, left=left
        )
        if state.scanned_at is None and not trigger.include_existing:
            return []  # the first scan only learns who is in it already
        stamp = int(now.timestamp())
        return [
            (contact_id, f"segment:{contact_id}:{stamp}", {"segment": trigger.segment})
            for contact_id in sorted(joined)
        ]

    def _daily_entries(
        self,
        conn: Connection,
        journey: ActiveJourney,
        trigger: DateTrigger | InactivityTrigger | HolidayTrigger,
        state: Any,
        day: date,
        now: datetime,
    ) -> list[tuple[int, str, dict[str, Any]]]:
        ws = journey.workspace_id
        audience = (
            facts.consenting(ws)
            if trigger.segment is None
            else segment_predicate_of(conn, ws, int(trigger.segment), now)
        )
        if isinstance(trigger, HolidayTrigger):
            year = holiday_occurrence(trigger, day)
            if year is None:
                return []
            context: dict[str, Any] = {"holiday": trigger.holiday}
            return [
                (contact_id, f"holiday:{year}:{contact_id}", context)
                for contact_id in sorted(facts.member_ids(conn, ws, audience))
            ]
        if isinstance(trigger, InactivityTrigger):
            span = timedelta(days=trigger.days)
            since = None if state.scanned_at is None else state.scanned_at - span
            quiet = facts.last_activity(
                conn, ws, audience, types=trigger.events, upto=now - span, since=since
            )
            return [
                (
                    contact_id,
                    f"inactive:{contact_id}:{int(at.timestamp())}",
                    {"inactive_days": trigger.days, "last_active_at": at.isoformat()},
                )
                for contact_id, at in quiet
            ]
        target = day + timedelta(days=trigger.days_before)
        if trigger.field == "birthday":
            context = {"birthday": target.isoformat()}
            found = [
                (contact_id, f"birthday:{target.year}:{contact_id}", context)
                for contact_id in facts.birthdays(
                    conn, ws, audience, lunar=False, keys=solar_birthday_keys(target)
                )
            ]
            lunar_year, keys = lunar_birthday_keys(target)
            found.extend(
                (contact_id, f"birthday:L{lunar_year}:{contact_id}", context)
                for contact_id in facts.birthdays(conn, ws, audience, lunar=True, keys=keys)
            )
            return found
        found = []
        for contact_id, joined in facts.join_dates(conn, ws, audience, trigger.attribute):
            joined_day = _local_day(joined, journey.timezone)
            years = None if joined_day is None else anniversary_years(joined_day, target)
            if years is not None:
                found.append(
                    (contact_id, f"anniversary:{target.year}:{contact_id}", {"years": years})
                )
        return found

    def _enter(
        self,
        conn: Connection,
        journey: ActiveJourney,
        candidates: Sequence[tuple[int, str, dict[str, Any]]],
        now: datetime,
    ) -> int:
        """Enrol the candidates the re-entry policy lets in; how many entered."""
        if not candidates:
            return 0
        definition = self._definitions[journey.version_id]
        history = queries.entry_history(conn, journey.id, [c[0] for c in candidates])
        rows = []
        for contact_id, key, context in candidates:
            last, inside = history.get(contact_id, (None, False))
            if may_enter(definition.reentry, active=inside, last_entered=last, now=now):
                rows.append(
                    (
                        journey.workspace_id, journey.id, journey.version_id, contact_id, key,
                        "active", definition.first_step, now, json_text(context), now, now,
                    )
                )  # fmt: skip
        queries.insert_enrolments(conn, rows)
        return len(rows)

    # -- advancing ----------------------------------------------------------------------
    def _advance_due(
        self, journey_ids: list[int], now: datetime, summary: PassSummary, limit: int | None
    ) -> None:
        size = self._options.batch_size
        while True:
            with self._engine.begin() as conn:
                claimed = queries.claim_due(conn, journey_ids=journey_ids, now=now, limit=size)
                if not claimed:
                    return
                self._load(conn, {row.version_id for row in claimed})
                by_workspace: dict[int, list[Due]] = defaultdict(list)
                for row in claimed:
                    by_workspace[row.workspace_id].append(row)
                for workspace_id, rows in by_workspace.items():
                    Batch(self._definitions, conn, workspace_id, rows, now, summary).run()
            summary.advanced += len(claimed)
            self._grew(len(claimed))
            if len(claimed) < size or (limit is not None and summary.advanced >= limit):
                return

    # -- definitions --------------------------------------------------------------------
    def _definition(self, version_id: int, document: dict[str, Any]) -> JourneyDefinition:
        found = self._definitions.get(version_id)
        if found is None:
            found = self._definitions[version_id] = parse_journey(document)
        return found

    def _load(self, conn: Connection, version_ids: set[int]) -> None:
        missing = version_ids - self._definitions.keys()
        for version_id, document in queries.definitions(conn, missing).items():
            self._definition(version_id, document)


# ---------------------------------------------------------------- helpers


def _waits_for_click(definition: JourneyDefinition, step_id: str) -> bool:
    step = definition.step(step_id)
    return isinstance(step, WaitForStep) and step.click


def _event_context(row: Any) -> dict[str, Any]:
    """What a template may print of the triggering event (``queries.enter_from_events``
    builds the same in SQL)."""
    context: dict[str, Any] = {
        "event_id": row.id,
        "event": row.type,
        "occurred_at": f"{row.occurred_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S+00:00}",
        "order_id": row.order_id,
        "amount": None if row.amount_fen is None else f"{row.amount_fen / 100:.2f}",
        "category": row.category,
        "coupon_code": row.coupon_code,
        "properties": row.properties or {},
    }
    return {key: value for key, value in context.items() if value is not None}


def _local_day(value: Any, timezone: str) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo(timezone)).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value.strip()[:10])
    return None


class _EventHorizon:
    """The highest event id at or below which every event is committed (or never will
    be): the events cursor never passes it, so an event written by a transaction that
    commits late is never skipped.

    SQLite has one writer at a time: every id below the highest is final. On
    PostgreSQL ids are taken in order but committed in any order, so the highest id
    is safe once every transaction that was writing events when it was read has
    ended (they hold a lock on ``events`` until then)."""

    def __init__(self) -> None:
        self._safe: int | None = None
        self._pending: tuple[int, frozenset[tuple[int, str]]] | None = None

    def safe(self, conn: Connection) -> int | None:
        top = queries.top_ids(conn)["events"]
        if conn.dialect.name != "postgresql":
            return top
        writers = queries.event_writers(conn)
        if not writers:
            self._safe, self._pending = top, None
        elif self._pending is None:
            self._pending = (top, writers)
        elif not self._pending[1] & writers:
            self._safe = max(self._safe or 0, self._pending[0])
            self._pending = (top, writers)
        return self._safe


def advance_due(engine: Engine, now: datetime, limit: int | None = None) -> int:
    """One pass of a fresh runner at ``now`` (scripts, tests); how much it did."""
    return JourneyRunner(engine).advance(now, limit=limit).work


async def run_journeys(
    engine: Engine,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    options: RunnerOptions | None = None,
    poll_interval: float = 1.0,
) -> PassSummary:
    """Run passes until ``stop`` is set: back to back while there is work, every
    ``poll_interval`` seconds when idle (so an event enters its journey within about
    a second). Database work runs on a thread of its own."""
    runner = JourneyRunner(engine, options)
    total = PassSummary()
    while not stop.is_set():
        try:
            done = await asyncio.to_thread(runner.advance, clock())
        except Exception:
            log.exception("journey pass failed; retrying")
            done = PassSummary()
        total.add(done)
        if not done.work:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_interval)
    return total
