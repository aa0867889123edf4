"""Single messages into the outbox: a service or verification message sent now (the
send API, keyword auto-replies, opt-out confirmations).

The message is composed with the workspace's signature, judged by the same gate as a
campaign (suppression, per-number rate limits, duplicates), priced, and written as one
``queued`` row — or ``blocked`` with its reason; the dispatcher takes it from there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, insert, select

from echelon.audience.phone import normalise_phone
from echelon.audience.queries import ensure_contact
from echelon.campaigns.metering import Meter
from echelon.compliance.gate import Candidate, Policy, judge
from echelon.compliance.policy import PolicySettings
from echelon.compliance.rules import BlockReason
from echelon.content.compose import MessageKind, compose
from echelon.content.length import count_parts
from echelon.content.plans import plan_from_json
from echelon.db.outbox import messages
from echelon.db.tables import workspaces
from echelon.errors import InvalidInput
from echelon.workspaces.service import ContentSettings, WorkspaceNotFound

# Rules an answer to a subscriber's own message is exempt from: they protect people from
# being flooded, and somebody who just asked is waiting for the answer.
SOLICITED_EXEMPT = frozenset({BlockReason.RATE_LIMIT, BlockReason.DUPLICATE})
# Built once: building a statement costs more than the database takes to run it.
_INSERT_MESSAGE = insert(messages).returning(messages.c.id)
# The content settings and the compliance policy, in one read of the workspace's row.
_WORKSPACE = select(
    workspaces.c.signature,
    workspaces.c.opt_out_text,
    workspaces.c.price_plan,
    workspaces.c.compliance,
    workspaces.c.timezone,
).where(workspaces.c.id == bindparam("workspace_id"))


@dataclass(frozen=True, slots=True)
class Enqueued:
    message_id: int
    phone: str
    status: str  # "queued" or "blocked"
    block_reason: str | None
    text: str
    parts: int
    cost_e4: int
    due_at: datetime


def enqueue_in(
    conn: Connection,
    *,
    workspace_id: int,
    phone: str,
    body: str,
    kind: MessageKind,
    now: datetime,
    reply_id: int | None = None,
) -> Enqueued:
    """Compose, judge, price and write one message, inside the caller's transaction.
    ``reply_id``: the message answers that reply, so rate limits do not hold it."""
    if kind == "marketing":
        raise InvalidInput("单条发送只用于服务类和验证码短信；营销短信请建活动发送")
    phone = normalise_phone(phone)
    settings, policy = _workspace_in(conn, workspace_id)
    if settings.signature is None:
        raise InvalidInput("工作区尚未设置短信签名，请先用 workspace settings --signature 设置")
    signature, opt_out = settings.signature, settings.opt_out_text
    text = compose(body, kind=kind, signature=signature, opt_out_text=opt_out)
    parts = count_parts(text).parts
    contact_id = ensure_contact(conn, workspace_id=workspace_id, phone=phone, now=now)
    text_hash = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    (verdict,) = judge(
        conn,
        workspace_id=workspace_id,
        policy=policy,
        candidates=[Candidate(contact_id, phone, kind, text_hash, now)],
    )
    reason = verdict.reason
    if reply_id is not None and reason in SOLICITED_EXEMPT:
        reason = None
    cost = 0
    if reason is None:
        # A single message is billed at the plan's first-tier price: its place in the
        # month's tiers is settled by the monthly invoice, not per send.
        local = now.astimezone(ZoneInfo(settings.price_plan.timezone))
        meter = Meter(settings.price_plan, month=(local.year, local.month), used_this_month=0)
        cost = meter.cost_e4(parts, now)
    status = "queued" if reason is None else "blocked"
    message_id = conn.execute(
        _INSERT_MESSAGE,
        {
            "workspace_id": workspace_id,
            "contact_id": contact_id,
            "phone": phone,
            "kind": kind,
            "text": text,
            "text_hash": text_hash,
            "parts": parts,
            "cost_e4": cost,
            "status": status,
            "block_reason": reason and reason.value,
            "reply_id": reply_id,
            "due_at": verdict.due_at,
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()
    return Enqueued(
        message_id, phone, status, reason and reason.value, text, parts, cost, verdict.due_at
    )


def _workspace_in(conn: Connection, workspace_id: int) -> tuple[ContentSettings, Policy]:
    """What ``settings_in`` and ``load_policy`` read, in one statement (a round trip
    less for every message the send API takes)."""
    row = conn.execute(_WORKSPACE, {"workspace_id": workspace_id}).one_or_none()
    if row is None:
        raise WorkspaceNotFound(str(workspace_id))
    settings = ContentSettings(row.signature, row.opt_out_text, plan_from_json(row.price_plan))
    return settings, PolicySettings.model_validate(row.compliance or {}).policy(row.timezone)
