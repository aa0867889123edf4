"""The planner: an audience turned into outbox rows, page by page.

Per page: read the contacts (only the columns the template's variables need), compose
each one's text, count its parts and lint what the variables brought in, run the gate
(consent, suppression, quiet hours, caps) for the whole page at once, bill it, and give
back every row — queued or blocked with its reason — to be written in one round trip.
The preview takes the same steps without writing, so a preview and the plan that
follows it decide alike.

A text depends only on the values of the variables its template reads, so each
distinct set of values is rendered, composed, counted, linted and hashed once (in a
bounded cache): a million recipients share far fewer texts than that.

An A/B test plans each contact as its variant (an *arm*: template, send time, channel,
link target) by a stable hash of campaign and contact; the holdout is judged like
everyone else and, if it could have been messaged, written as blocked ``holdout``; in
a test before a roll-out, the rest are skipped until the winner is planned for them.
Tracked links and coupons render as placeholders exactly as long as the real ones
(so texts stay shared and parts exact); the recipient's own link and coupon replace
them when the page is written (``personalise``).

The steps are apart so that a page can be composed outside any transaction and planning
can run in a process of its own (``campaigns.planning``) while another writes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection

from echelon.campaigns import queries
from echelon.campaigns.experiments import Split
from echelon.campaigns.metering import Meter
from echelon.campaigns.models import Audience
from echelon.compliance.gate import Candidate, Policy, judge
from echelon.compliance.rules import BlockReason
from echelon.content.length import count_parts
from echelon.content.preview import ContactValues
from echelon.content.render import RenderFailed
from echelon.content.templates import ApprovedTemplate
from echelon.content.words import WordChecker, has_block
from echelon.tracking.links import CampaignTracking

PAGE = 5_000
Progress = Callable[[int, int], None]
# The texts kept, by count and by characters (a text costs about 300 bytes and two per
# character): 60-200 MB at most. The cache starts afresh when either is reached.
TEXT_CACHE = 131_072
TEXT_CACHE_CHARACTERS = 16_000_000

# A contact's text as planned: the text, its hash, its parts, and why it may not go.
PlannedText = tuple[str, str, int, BlockReason | None]
# A recipient as read: contact id, phone, carrier, province (the last two go on the
# message as they are now).
Recipient = tuple[int, str, str | None, str | None]
# A contact's message as planned: contact id, phone, text, hash, parts, cost, why it is
# blocked (None: it goes), when it is due, its arm (index into ``Planner.arms``), and
# the recipient's carrier and province.
PlannedRow = tuple[int, str, str, str, int, int, str | None, datetime, int, str | None, str | None]
# The arm of a holdout contact: judged with the control's text, never sent.
HOLDOUT_ARM = -1
# Names a template reads that tracking provides, not the contact.
TRACKED = frozenset({"link", "coupon"})
# What the gate decided for a contact: why it may not go (None: it may) and when.
Decision = tuple[BlockReason | None, datetime]


@dataclass
class PlanSummary:
    """What a plan did (or would do): counts by outcome, parts and cost."""

    audience: int = 0
    queued: int = 0
    blocked: Counter[str] = field(default_factory=Counter)
    parts: int = 0
    cost_e4: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    # Contacts left for a later stage: an A/B test's rest, until its winner is chosen.
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class PlanArm:
    """What one group of recipients receives: an A/B variant, or the whole campaign."""

    variant: str | None  # None: not a test
    template: ApprovedTemplate
    send_at: datetime
    channel_id: int | None = None  # the channel to prefer; None: routing decides
    link: str | None = None  # every link() goes here (a variant testing a landing page)


@dataclass(frozen=True, slots=True)
class PlanRequest:
    workspace_id: int
    campaign_id: int | None
    audience: Audience
    template: ApprovedTemplate
    policy: Policy
    checker: WordChecker
    send_at: datetime
    ends_at: datetime | None
    budget_e4: int | None
    samples: int = 0
    channel_id: int | None = None
    # An A/B test: its arms and split; ``stage`` "test" plans the test share and the
    # holdout, "rollout" plans the rest with ``arms[0]`` (the chosen variant).
    arms: tuple[PlanArm, ...] = ()
    split: Split | None = None
    stage: Literal["test", "rollout"] = "test"
    tracking: CampaignTracking | None = None


@dataclass(frozen=True, slots=True)
class ComposedPage:
    """A page of contacts, (id, phone) each, with their texts and arms: ready for the
    gate. ``last_id`` is the page's last contact, planned or skipped (the cursor)."""

    contacts: list[Recipient]
    texts: list[PlannedText]
    arms: list[int]
    last_id: int
    skipped: int = 0


class Planner:
    """One plan's running state across its pages: the texts composed so far, the
    meter that bills them in order, and the summary."""

    def __init__(self, request: PlanRequest, meter: Meter, summary: PlanSummary) -> None:
        self.request = request
        self.summary = summary
        self._meter = meter
        self.arms = request.arms or (
            PlanArm(None, request.template, request.send_at, request.channel_id),
        )
        if request.stage == "rollout" and request.split is None:
            raise ValueError("a roll-out needs the test's split")
        names = set().union(*(arm.template.compiled.variables for arm in self.arms))
        self._values = ContactValues(names - TRACKED)
        tracking = request.tracking
        self._tracked: list[dict[str, object]] = [
            {} if tracking is None else tracking.placeholders(link_target=arm.link)
            for arm in self.arms
        ]
        self._texts: dict[Hashable, PlannedText] = {}
        self._cached_characters = 0

    def arm_of(self, contact_id: int) -> int | None:
        """The contact's arm; ``HOLDOUT_ARM``; None: not planned in this stage."""
        split = self.request.split
        if split is None:
            return 0
        group, variant = split.assign(self.request.campaign_id or 0, contact_id)
        if self.request.stage == "rollout":
            return 0 if group == "rollout" else None
        if group == "holdout":
            return HOLDOUT_ARM
        return variant  # None for the rest, who wait for the winner

    def resume(self, going: int, blocked: dict[str, int], parts: int, cost_e4: int) -> None:
        """Count what an earlier, interrupted run of this plan already wrote."""
        self.summary.queued += going
        self.summary.blocked.update(blocked)
        self.summary.parts += parts
        self.summary.cost_e4 += cost_e4

    def read_page(self, conn: Connection, *, after_id: int) -> queries.AudiencePage | None:
        """The next page of the audience after contact ``after_id``; None when done."""
        page = queries.audience_page(
            conn,
            self.request.workspace_id,
            self.request.audience,
            after_id=after_id,
            limit=PAGE,
            columns=self._values.columns,
            attribute_keys=self._values.attribute_keys,
            with_tags=self._values.needs_tags,
        )
        return page if page.rows else None

    def compose(self, page: queries.AudiencePage) -> ComposedPage:
        """Each contact's arm and text; no database."""
        needs_tags, tags = self._values.needs_tags, page.tags
        # What a text depends on, as read: all but the id and the phone. A template
        # that prints the phone has a text per contact: nothing to share.
        shared = "phone" not in self._values.names
        texts = self._texts
        contacts: list[Recipient] = []
        composed: list[PlannedText] = []
        arms: list[int] = []
        skipped = 0
        for row in page.rows:
            contact_id, phone = row[0], row[1]
            arm = self.arm_of(contact_id)
            if arm is None:
                skipped += 1
                continue
            its_tags = tags.get(contact_id, ()) if needs_tags else ()
            text_arm = max(arm, 0)  # the holdout is judged with the control's text
            if not shared:
                text = self._text(row, its_tags, text_arm)
            else:
                key = (text_arm, row[2:], tuple(its_tags)) if needs_tags else (text_arm, row[2:])
                cached = texts.get(key)
                if cached is not None:
                    text = cached
                else:
                    text = self._text(row, its_tags, text_arm)
                    self._cached_characters += len(text[0])
                    if len(texts) >= TEXT_CACHE or self._cached_characters > TEXT_CACHE_CHARACTERS:
                        texts.clear()
                        self._cached_characters = len(text[0])
                    texts[key] = text
            contacts.append((contact_id, phone, row[2], row[3]))
            composed.append(text)
            arms.append(arm)
        return ComposedPage(contacts, composed, arms, page.rows[-1][0], skipped)

    def decide(self, conn: Connection, page: ComposedPage) -> list[PlannedRow]:
        """Gate and bill the page: a row for each contact, to go or blocked."""
        return self.bill(page, self.judge(conn, page))

    def judge(self, conn: Connection, page: ComposedPage) -> list[Decision]:
        """The gate's decision for each contact of the page."""
        request = self.request
        kind, ends_at = request.template.kind, request.ends_at
        sends = [arm.send_at for arm in self.arms]
        # The gate judges only what composed cleanly, so a refused text costs no cap.
        verdicts = iter(
            judge(
                conn,
                workspace_id=request.workspace_id,
                policy=request.policy,
                candidates=[
                    Candidate(contact_id, phone, kind, text[1], sends[max(arm, 0)], ends_at)
                    for (contact_id, phone, _, _), text, arm in zip(
                        page.contacts, page.texts, page.arms, strict=True
                    )
                    if text[3] is None
                ],
            )
        )
        return [
            (text[3], sends[max(arm, 0)]) if text[3] is not None else next(verdicts)
            for text, arm in zip(page.texts, page.arms, strict=True)
        ]

    def bill(self, page: ComposedPage, decided: list[Decision]) -> list[PlannedRow]:
        """Bill what the gate let through, in order, within the budget: the page's rows.
        No database: billing runs in the order pages are written."""
        request, summary = self.request, self.summary
        # Every message that passed the gate is billed in order, the month's tiers
        # counting it even if the budget then stops it.
        costs = iter(
            self._meter.costs_e4(
                (text[2], due)
                for text, (reason, due), arm in zip(page.texts, decided, page.arms, strict=True)
                if reason is None and arm != HOLDOUT_ARM
            )
        )
        budget = request.budget_e4
        queued, parts_total, spent = summary.queued, summary.parts, summary.cost_e4
        rows: list[PlannedRow] = []
        for recipient, (text, text_hash, parts, _), (reason, due), arm in zip(
            page.contacts, page.texts, decided, page.arms, strict=True
        ):
            contact_id, phone, carrier, province = recipient
            cost = 0
            if reason is None and arm == HOLDOUT_ARM:
                reason = BlockReason.HOLDOUT
            elif reason is None:
                cost = next(costs)
                if budget is not None and spent + cost > budget:
                    reason, cost = BlockReason.BUDGET, 0
            if reason is None:
                queued += 1
                parts_total += parts
                spent += cost
                if len(summary.samples) < request.samples:
                    sample = {"phone": phone, "text": text, "parts": parts, "due_at": due}
                    if self.arms[arm].variant is not None:
                        sample["variant"] = self.arms[arm].variant
                    summary.samples.append(sample)
            else:
                summary.blocked[reason.value] += 1
            why = None if reason is None else reason.value
            rows.append(
                (contact_id, phone, text, text_hash, parts, cost, why, due, arm, carrier, province)
            )
        summary.queued, summary.parts, summary.cost_e4 = queued, parts_total, spent
        summary.skipped += page.skipped
        return rows

    def _text(self, row: Sequence[Any], tags: Sequence[str], arm: int) -> PlannedText:
        """The text for a contact as read, or why there is none to send."""
        values = self._values
        stored = row[len(values.columns) :]
        if values.attribute_keys is None:
            attributes = json.loads(stored[0] or "{}")
        else:
            attributes = {
                key: json.loads(value)
                for key, value in zip(values.attribute_keys, stored, strict=True)
                if value is not None
            }
        variables = {
            name: value
            for name, value in zip(values.names, values.read(row, attributes, tags), strict=True)
            if value is not None
        }
        variables.update(self._tracked[arm])
        try:
            text = self.arms[arm].template.compose(variables, contact=row[1])
        except RenderFailed:
            return "", _digest(""), 0, BlockReason.RENDER_FAILED
        refusal = BlockReason.CONTENT if has_block(self.request.checker.lint(text)) else None
        return text, _digest(text), count_parts(text).parts, refusal


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
