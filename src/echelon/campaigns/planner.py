"""The planner: an audience turned into outbox rows, page by page.

Per page: render and compose each contact's text, count its parts, lint what the
variables brought in, run the gate (consent, suppression, quiet hours, caps) for the
whole page at once, bill it, and write every row — queued or blocked with its reason —
in one round trip. The same pass without writing is the preview, so a preview and the
plan that follows it decide alike.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
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
from echelon.content.preview import contact_variables
from echelon.content.render import RenderFailed
from echelon.content.templates import ApprovedTemplate
from echelon.content.words import WordChecker, has_block

PAGE = 5_000
Progress = Callable[[int, int], None]


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


def plan(
    conn: Connection,
    request: PlanRequest,
    meter: Meter,
    *,
    now: datetime,
    write: bool,
    progress: Progress | None = None,
) -> PlanSummary:
    """Plan (``write``) or preview the campaign; either way the same decisions."""
    summary = PlanSummary(
        audience=queries.audience_size(conn, request.workspace_id, request.audience)
    )
    after = 0
    while page := queries.audience_page(
        conn, request.workspace_id, request.audience, after_id=after, limit=PAGE
    ):
        after = page[-1]["id"]
        rows = _plan_page(conn, request, meter, page, summary, now)
        if write:
            queries.write_planned(conn, rows)
        if progress:
            progress(len(page), summary.audience)
    return summary


def _plan_page(
    conn: Connection,
    request: PlanRequest,
    meter: Meter,
    page: list[dict[str, Any]],
    summary: PlanSummary,
    now: datetime,
) -> list[tuple[Any, ...]]:
    texts: list[str] = []
    refusals: list[BlockReason | None] = []
    candidates: list[Candidate] = []
    for contact in page:
        text, refusal = _compose(request, contact)
        texts.append(text)
        refusals.append(refusal)
        candidates.append(
            Candidate(
                contact_id=contact["id"],
                phone=contact["phone"],
                kind=request.template.kind,
                text_hash=_digest(text),
                due_at=request.send_at,
                expires_at=request.ends_at,
            )
        )
    # The gate judges only what composed cleanly, so a refused text costs no cap.
    judged = iter(
        judge(
            conn,
            workspace_id=request.workspace_id,
            policy=request.policy,
            candidates=[c for c, r in zip(candidates, refusals, strict=True) if r is None],
        )
    )
    rows: list[tuple[Any, ...]] = []
    for contact, text, refusal, candidate in zip(page, texts, refusals, candidates, strict=True):
        due = candidate.due_at
        reason = refusal
        if reason is None:
            verdict = next(judged)
            reason, due = verdict.reason, verdict.due_at
        parts = count_parts(text).parts if text else 0
        cost = 0
        if reason is None:
            cost = meter.cost_e4(parts, due)
            if request.budget_e4 is not None and summary.cost_e4 + cost > request.budget_e4:
                reason, cost = BlockReason.BUDGET, 0
        if reason is None:
            summary.queued += 1
            summary.parts += parts
            summary.cost_e4 += cost
            if len(summary.samples) < request.samples:
                summary.samples.append(
                    {"phone": contact["phone"], "text": text, "parts": parts, "due_at": due}
                )
        else:
            summary.blocked[reason.value] += 1
        rows.append(
            (
                request.workspace_id,
                contact["id"],
                contact["phone"],
                request.campaign_id,
                request.template.kind,
                text,
                candidate.text_hash,
                parts,
                cost,
                "queued" if reason is None else "blocked",
                None if reason is None else reason.value,
                due,
                request.ends_at,
                now,
                now,
            )
        )
    return rows


def _compose(request: PlanRequest, contact: dict[str, Any]) -> tuple[str, BlockReason | None]:
    """The contact's text, or why there is none to send."""
    try:
        text = request.template.compose(contact_variables(contact), contact=contact["phone"])
    except RenderFailed:
        return "", BlockReason.RENDER_FAILED
    if has_block(request.checker.lint(text)):
        return text, BlockReason.CONTENT
    return text, None


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
