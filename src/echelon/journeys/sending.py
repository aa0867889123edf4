"""A batch of journey steps' messages into the outbox, through the same gate as every
message: compose, lint, judge (consent, suppression, quiet hours, caps), price, write.

Modelled on ``dispatch.send.enqueue_in``, set-based for a batch: one gate call and
one write per batch, inside the runner's transaction — the one that also moves the
enrolments on, so a step's message and its advance commit together or not at all.
A step that already has its message (``uq_messages_enrolment_id_journey_step``) is
never planned twice. A template that cannot be used now (not approved, no
signature) holds its steps instead of failing the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from echelon.campaigns.metering import Meter
from echelon.compliance.gate import Candidate, judge
from echelon.compliance.policy import load_policy
from echelon.compliance.rules import BlockReason
from echelon.content.compose import MessageKind
from echelon.content.length import count_parts
from echelon.content.preview import ContactValues
from echelon.content.templates import ApprovedTemplate, approved_template_in
from echelon.content.words import has_block
from echelon.content.workspace_words import workspace_checker
from echelon.db.bulk import stored_time
from echelon.errors import EchelonError, InvalidInput
from echelon.journeys import queries
from echelon.journeys.facts import ContactRow
from echelon.tracking.links import LinkTargetMissing, allocate_coupon_codes, allocate_link_codes
from echelon.tracking.rules import check_target
from echelon.tracking.settings import settings_in as tracking_settings_in
from echelon.workspaces.service import settings_in

_POOL_CHUNK = 1_000
# Trigger facts a template may name directly ({{ order_id }}); all of them are also
# under ``event`` ({{ event.properties.express }}).
CONTEXT_VARIABLES = ("order_id", "amount", "category", "coupon_code", "years", "holiday")


@dataclass(frozen=True, slots=True)
class StepSend:
    """One enrolment's ``send`` step: what to plan, for whom."""

    enrolment_id: int
    journey_id: int
    contact_id: int
    step: str
    template: str
    context: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Planned:
    """What became of a step's message: ``queued`` (due at ``due_at``, possibly moved
    out of quiet hours), ``blocked`` with its reason, ``existing`` (planned before),
    or ``held`` (the template cannot be used now; ``block_reason`` says why)."""

    status: str
    block_reason: str | None
    due_at: datetime


@dataclass
class Templates:
    """A batch's templates, each loaded once; a failure is kept as the reason."""

    conn: Connection
    workspace_id: int
    loaded: dict[str, ApprovedTemplate | EchelonError] = field(default_factory=dict)

    def get(self, name: str) -> ApprovedTemplate | EchelonError:
        found = self.loaded.get(name)
        if found is None:
            try:
                found = approved_template_in(self.conn, workspace_id=self.workspace_id, name=name)
            except EchelonError as exc:
                found = exc
            self.loaded[name] = found
        return found


def journey_variables(
    values: ContactValues, contact: ContactRow, context: Mapping[str, Any]
) -> dict[str, object]:
    """A template's variables (``values.names``) for one contact in one enrolment: the
    contact's own, as ``contact_variables`` gives them; where the contact has none, the
    trigger's facts, then its event's properties; and all of the facts as ``event``."""
    row, attributes, tags = contact
    variables = dict(zip(values.names, values.read(row, attributes, tags), strict=True))
    properties = context.get("properties") or {}
    for name, value in variables.items():
        if value is None:
            found = context.get(name) if name in CONTEXT_VARIABLES else None
            if found is None or found == "":
                found = properties.get(name)
            if found is not None and found != "":
                variables[name] = found
    variables["event"] = dict(context)
    return variables


def plan_step_messages(
    conn: Connection,
    *,
    workspace_id: int,
    sends: Sequence[StepSend],
    contacts: Mapping[int, ContactRow],
    values: ContactValues,
    templates: Templates,
    now: datetime,
) -> list[Planned]:
    """Plan each step's message (in order) inside the caller's transaction."""
    if not sends:
        return []
    existing = queries.step_messages(conn, [s.enrolment_id for s in sends])
    settings = settings_in(conn, workspace_id=workspace_id)
    checker = workspace_checker(conn, workspace_id=workspace_id)
    tracking = _Tracking(conn, workspace_id, now)
    results: list[Planned | None] = [None] * len(sends)
    drafts: list[tuple[int, StepSend, MessageKind, str, str, int, str, BlockReason | None]] = []
    linted: dict[str, bool] = {}
    places: dict[int, tuple[str | None, str | None]] = {}  # carrier, province
    for i, send in enumerate(sends):
        found = existing.get((send.enrolment_id, send.step))
        if found is not None:
            results[i] = Planned("existing", None, max(found[2], now))
            continue
        template = templates.get(send.template)
        contact = contacts.get(send.contact_id)
        if isinstance(template, EchelonError) or contact is None:
            reason = "contact_gone" if contact is None else getattr(template, "code", "template")
            results[i] = Planned("held", reason, now)
            continue
        phone = contact[0][1]
        places[i] = (contact[0][2], contact[0][3])
        variables = journey_variables(values, contact, send.context)
        variables.update(tracking.variables(i, template))
        refusal: BlockReason | None = None
        try:
            text = template.compose(variables, contact=phone)
        except InvalidInput:
            text, refusal = "", BlockReason.RENDER_FAILED
            tracking.forget(i)
        if refusal is None:
            blocked = linted.get(text)
            if blocked is None:
                blocked = linted[text] = has_block(checker.lint(text))
            if blocked:
                refusal = BlockReason.CONTENT
        parts = count_parts(text).parts if text else 0
        digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        drafts.append((i, send, template.kind, phone, text, parts, digest, refusal))
    verdicts = iter(
        judge(
            conn,
            workspace_id=workspace_id,
            policy=load_policy(conn, workspace_id),
            candidates=[
                Candidate(send.contact_id, phone, kind, digest, now)
                for _, send, kind, phone, _, _, digest, refusal in drafts
                if refusal is None
            ],
        )
    )
    local = now.astimezone(ZoneInfo(settings.price_plan.timezone))
    # Billed at the plan's first tier, as single sends are: a step's place in the
    # month's tiers is settled by the monthly invoice, not per message.
    meter = Meter(settings.price_plan, month=(local.year, local.month), used_this_month=0)
    rows: list[tuple[Any, ...]] = []
    stored = stored_time(conn)
    spelled: dict[datetime, Any] = {now: stored(now)}
    for i, send, kind, phone, text, parts, digest, refusal in drafts:
        reason, due = refusal, now
        if reason is None:
            reason, due = next(verdicts)
        cost = 0 if reason is not None else meter.cost_e4(parts, due)
        status = "queued" if reason is None else "blocked"
        if reason is not None:
            tracking.forget(i)
        due_stored = spelled.get(due)
        if due_stored is None:
            due_stored = spelled[due] = stored(due)
        rows.append(
            (
                workspace_id, send.contact_id, phone, kind, text, digest, parts, cost, status,
                reason and reason.value, due_stored, spelled[now], spelled[now], send.journey_id,
                send.enrolment_id, send.step, *places[i],
            )
        )  # fmt: skip
        results[i] = Planned(status, reason and reason.value, due)
    queries.insert_messages(conn, rows)
    tracking.write(sends)
    return [r for r in results if r is not None]


class _Pool:
    def __init__(self, refill: Callable[[int], list[str]]) -> None:
        self._refill = refill
        self._codes: list[str] = []

    def take(self) -> str:
        if not self._codes:
            self._codes = self._refill(_POOL_CHUNK)
        return self._codes.pop()


class _Links:
    """``link`` for one message: ``link(url)`` is the recipient's own short link."""

    __slots__ = ("_issued", "_tracking", "_where")

    def __init__(self, tracking: _Tracking, where: int) -> None:
        self._tracking = tracking
        self._where = where
        self._issued: dict[str, str] = {}

    def __call__(self, url: object) -> str:
        target = check_target(url)
        short = self._issued.get(target)
        if short is None:
            short = self._issued[target] = self._tracking.issue_link(self._where, target)
        return short

    def __str__(self) -> str:
        raise LinkTargetMissing()


class _Tracking:
    """Short links and coupons of the batch's messages, issued while composing and
    stored once the messages are written (tied to them by enrolment and step)."""

    def __init__(self, conn: Connection, workspace_id: int, now: datetime) -> None:
        self._conn = conn
        self._workspace_id = workspace_id
        self._now = now
        self._settings = tracking_settings_in(conn, workspace_id=workspace_id)
        self._links = _Pool(lambda n: allocate_link_codes(conn, n, self._settings.code_length))
        self._coupons = _Pool(lambda n: allocate_coupon_codes(conn, workspace_id, n))
        self._pending_links: dict[int, list[tuple[str, str]]] = {}
        self._pending_coupons: dict[int, str] = {}

    def variables(self, where: int, template: ApprovedTemplate) -> dict[str, object]:
        uses = template.compiled.variables
        found: dict[str, object] = {}
        if "link" in uses:
            found["link"] = _Links(self, where)
        if "coupon" in uses:
            code = self._coupons.take()
            self._pending_coupons[where] = code
            found["coupon"] = code
        return found

    def issue_link(self, where: int, target: str) -> str:
        code = self._links.take()
        self._pending_links.setdefault(where, []).append((code, target))
        return self._settings.link_format.url(code)

    def forget(self, where: int) -> None:
        """The message at ``where`` will not go: store none of its links or coupons."""
        self._pending_links.pop(where, None)
        self._pending_coupons.pop(where, None)

    def write(self, sends: Sequence[StepSend]) -> None:
        if not self._pending_links and not self._pending_coupons:
            return
        ids = queries.step_messages(self._conn, [sends[i].enrolment_id for i in self._wanted()])
        link_rows: list[dict[str, Any]] = []
        coupon_rows: list[dict[str, Any]] = []
        for where, issued in self._pending_links.items():
            send = sends[where]
            message_id = ids[send.enrolment_id, send.step][0]
            link_rows.extend(
                {
                    "workspace_id": self._workspace_id,
                    "code": code,
                    "contact_id": send.contact_id,
                    "message_id": message_id,
                    "target_url": target,
                    "created_at": self._now,
                }
                for code, target in issued
            )
        for where, code in self._pending_coupons.items():
            send = sends[where]
            coupon_rows.append(
                {
                    "workspace_id": self._workspace_id,
                    "code": code,
                    "contact_id": send.contact_id,
                    "message_id": ids[send.enrolment_id, send.step][0],
                    "issued_at": self._now,
                }
            )
        queries.insert_links(self._conn, link_rows)
        queries.insert_coupons(self._conn, coupon_rows)
        self._pending_links.clear()
        self._pending_coupons.clear()

    def _wanted(self) -> set[int]:
        return set(self._pending_links) | set(self._pending_coupons)
