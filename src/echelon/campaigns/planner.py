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
from typing import Any

from sqlalchemy import Connection

from echelon.campaigns import queries
from echelon.campaigns.metering import Meter
from echelon.campaigns.models import Audience
from echelon.compliance.gate import Candidate, Policy, judge
from echelon.compliance.rules import BlockReason
from echelon.content.length import count_parts
from echelon.content.preview import ContactValues
from echelon.content.render import RenderFailed
from echelon.content.templates import ApprovedTemplate
from echelon.content.words import WordChecker, has_block

PAGE = 5_000
Progress = Callable[[int, int], None]
# The texts kept, by count and by characters (a text costs about 300 bytes and two per
# character): 60-200 MB at most. The cache starts afresh when either is reached.
TEXT_CACHE = 131_072
TEXT_CACHE_CHARACTERS = 16_000_000

# A contact's text as planned: the text, its hash, its parts, and why it may not go.
PlannedText = tuple[str, str, int, BlockReason | None]
# A contact's message as planned: contact id, phone, text, hash, parts, cost, why it is
# blocked (None: it goes) and when it is due.
PlannedRow = tuple[int, str, str, str, int, int, str | None, datetime]
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


@dataclass(frozen=True, slots=True)
class ComposedPage:
    """A page of contacts, (id, phone) each, with their texts: ready for the gate."""

    contacts: list[tuple[int, str]]
    texts: list[PlannedText]

    @property
    def last_id(self) -> int:
        return self.contacts[-1][0]


class Planner:
    """One plan's running state across its pages: the texts composed so far, the
    meter that bills them in order, and the summary."""

    def __init__(self, request: PlanRequest, meter: Meter, summary: PlanSummary) -> None:
        self.request = request
        self.summary = summary
        self._meter = meter
        self._values = ContactValues(request.template.compiled.variables)
        self._texts: dict[Hashable, PlannedText] = {}
        self._cached_characters = 0

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
        """Each contact's text; no database."""
        needs_tags, tags = self._values.needs_tags, page.tags
        # What a text depends on, as read: all but the id and the phone. A template
        # that prints the phone has a text per contact: nothing to share.
        if "phone" in self._values.names:
            return ComposedPage(
                [(row[0], row[1]) for row in page.rows],
                [self._text(row, tags.get(row[0], ())) for row in page.rows],
            )
        texts = self._texts
        contacts: list[tuple[int, str]] = []
        composed: list[PlannedText] = []
        for row in page.rows:
            contact_id, phone = row[0], row[1]
            its_tags = tags.get(contact_id, ()) if needs_tags else ()
            key = (row[2:], tuple(its_tags)) if needs_tags else row[2:]
            text = texts.get(key)
            if text is None:
                text = self._text(row, its_tags)
                self._cached_characters += len(text[0])
                if len(texts) >= TEXT_CACHE or self._cached_characters > TEXT_CACHE_CHARACTERS:
                    texts.clear()
                    self._cached_characters = len(text[0])
                texts[key] = text
            contacts.append((contact_id, phone))
            composed.append(text)
        return ComposedPage(contacts, composed)

    def decide(self, conn: Connection, page: ComposedPage) -> list[PlannedRow]:
        """Gate and bill the page: a row for each contact, to go or blocked."""
        return self.bill(page, self.judge(conn, page))

    def judge(self, conn: Connection, page: ComposedPage) -> list[Decision]:
        """The gate's decision for each contact of the page."""
        request = self.request
        kind, send_at, ends_at = request.template.kind, request.send_at, request.ends_at
        # The gate judges only what composed cleanly, so a refused text costs no cap.
        verdicts = iter(
            judge(
                conn,
                workspace_id=request.workspace_id,
                policy=request.policy,
                candidates=[
                    Candidate(contact_id, phone, kind, text[1], send_at, ends_at)
                    for (contact_id, phone), text in zip(page.contacts, page.texts, strict=True)
                    if text[3] is None
                ],
            )
        )
        return [
            (text[3], send_at) if text[3] is not None else next(verdicts) for text in page.texts
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
                for text, (reason, due) in zip(page.texts, decided, strict=True)
                if reason is None
            )
        )
        budget = request.budget_e4
        queued, parts_total, spent = summary.queued, summary.parts, summary.cost_e4
        rows: list[PlannedRow] = []
        for (contact_id, phone), (text, text_hash, parts, _), (reason, due) in zip(
            page.contacts, page.texts, decided, strict=True
        ):
            cost = 0
            if reason is None:
                cost = next(costs)
                if budget is not None and spent + cost > budget:
                    reason, cost = BlockReason.BUDGET, 0
            if reason is None:
                queued += 1
                parts_total += parts
                spent += cost
                if len(summary.samples) < request.samples:
                    summary.samples.append(
                        {"phone": phone, "text": text, "parts": parts, "due_at": due}
                    )
                rows.append((contact_id, phone, text, text_hash, parts, cost, None, due))
            else:
                summary.blocked[reason.value] += 1
                rows.append((contact_id, phone, text, text_hash, parts, 0, reason.value, due))
        summary.queued, summary.parts, summary.cost_e4 = queued, parts_total, spent
        return rows

    def _text(self, row: Sequence[Any], tags: Sequence[str]) -> PlannedText:
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
        try:
            text = self.request.template.compose(variables, contact=row[1])
        except RenderFailed:
            return "", _digest(""), 0, BlockReason.RENDER_FAILED
        refusal = BlockReason.CONTENT if has_block(self.request.checker.lint(text)) else None
        return text, _digest(text), count_parts(text).parts, refusal


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
