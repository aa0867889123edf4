"""Single messages into the outbox: a service or verification message sent now (the
send API, keyword auto-replies, opt-out confirmations), and a template's test message.

The message is composed with the workspace's signature, judged by the same gate as a
campaign (suppression, per-number rate limits, duplicates), priced, and written as one
``queued`` row — or ``blocked`` with its reason; the dispatcher takes it from there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, insert, select

from echelon.audience.phone import normalise_phone
from echelon.audience.queries import ensure_addressee
from echelon.campaigns.metering import Meter
from echelon.compliance.gate import Candidate, Policy, judge
from echelon.compliance.policy import PolicySettings
from echelon.compliance.rules import BlockReason
from echelon.content.compose import MessageKind, compose
from echelon.content.length import count_parts
from echelon.content.plans import plan_from_json
from echelon.content.preview import preview_in
from echelon.content.templates import load as load_template
from echelon.content.words import Severity
from echelon.db.outbox import channels, messages
from echelon.db.tables import workspaces
from echelon.dispatch.channel_admin import ChannelNotFound
from echelon.errors import EchelonError, InvalidInput
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
    addressee = ensure_addressee(conn, workspace_id=workspace_id, phone=phone, now=now)
    text_hash = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    (verdict,) = judge(
        conn,
        workspace_id=workspace_id,
        policy=policy,
        candidates=[Candidate(addressee.id, phone, kind, text_hash, now)],
    )
    reason = verdict.reason
    if reply_id is not None and reason in SOLICITED_EXEMPT:
        reason = None
    return _write_one(
        conn,
        settings,
        {
            "workspace_id": workspace_id,
            "contact_id": addressee.id,
            "phone": phone,
            "kind": kind,
            "text": text,
            "text_hash": text_hash,
            "parts": parts,
            "reply_id": reply_id,
            "carrier": addressee.carrier,
            "province": addressee.province,
            "due_at": verdict.due_at,
        },
        reason,
        now,
    )


def _write_one(
    conn: Connection,
    settings: ContentSettings,
    row: dict[str, Any],
    reason: BlockReason | None,
    now: datetime,
) -> Enqueued:
    """Price (if it goes) and write one judged message: ``row`` holds its columns but
    the status, block reason, cost and times."""
    cost = 0
    if reason is None:
        # A single message is billed at the plan's first-tier price: its place in the
        # month's tiers is settled by the monthly invoice, not per send.
        local = now.astimezone(ZoneInfo(settings.price_plan.timezone))
        meter = Meter(settings.price_plan, month=(local.year, local.month), used_this_month=0)
        cost = meter.cost_e4(row["parts"], now)
    status = "queued" if reason is None else "blocked"
    block_reason = None if reason is None else reason.value
    values = row | {
        "cost_e4": cost,
        "status": status,
        "block_reason": block_reason,
        "created_at": now,
        "updated_at": now,
    }
    message_id = conn.execute(_INSERT_MESSAGE, values).scalar_one()
    return Enqueued(
        message_id,
        row["phone"],
        status,
        block_reason,
        row["text"],
        row["parts"],
        cost,
        row["due_at"],
    )


def send_test_message(
    engine: Engine,
    *,
    workspace_id: int,
    template: str,
    to: str,
    contact: str | None,
    values: Mapping[str, object],
    channel: str | None,
    now: datetime,
) -> Enqueued:
    """A template's test message (draft, pending or approved) into the outbox for ``to``,
    rendered for the contact ``contact`` or, without one, with the sample ``values``;
    through ``channel`` when named. Kind ``test`` and no campaign, so no campaign pays
    for it or counts it. The marketer asked for it now: marketing consent and quiet
    hours do not apply; every suppression, the rate limits and the duplicate rule do
    (the gate, here and again at send time), and a blocked word blocks it."""
    to = normalise_phone(to)
    contact_phone = None if contact is None else normalise_phone(contact)
    with engine.begin() as conn:
        stored = load_template(conn, workspace_id=workspace_id, name=template)
        if stored.review_status == "rejected":
            raise TemplateRejected(stored.name)
        shown = preview_in(
            conn,
            workspace_id=workspace_id,
            name=stored.name,
            phone=contact_phone,
            context=values,
            now=now,
        )
        channel_id = None if channel is None else _channel_id(conn, workspace_id, channel)
        settings, policy = _workspace_in(conn, workspace_id)
        addressee = ensure_addressee(conn, workspace_id=workspace_id, phone=to, now=now)
        text_hash = hashlib.blake2b(shown.text.encode(), digest_size=16).hexdigest()
        reason: BlockReason | None = BlockReason.CONTENT
        due_at = now
        if not any(hit.severity is Severity.BLOCK for hit in shown.hits):
            (verdict,) = judge(
                conn,
                workspace_id=workspace_id,
                policy=policy,
                candidates=[Candidate(addressee.id, to, "test", text_hash, now)],
            )
            reason, due_at = verdict.reason, verdict.due_at
        return _write_one(
            conn,
            settings,
            {
                "workspace_id": workspace_id,
                "contact_id": addressee.id,
                "phone": to,
                "kind": "test",
                "text": shown.text,
                "text_hash": text_hash,
                "parts": shown.count.parts,
                "channel_id": channel_id,
                "carrier": addressee.carrier,
                "province": addressee.province,
                "due_at": due_at,
            },
            reason,
            now,
        )


class TemplateRejected(EchelonError):
    code = "template_rejected"
    http_status = 409

    def __init__(self, name: str) -> None:
        super().__init__(f"模板「{name}」已被驳回，修改后才能发送测试短信")


def _channel_id(conn: Connection, workspace_id: int, name: str) -> int:
    found = conn.execute(
        select(channels.c.id).where(
            channels.c.workspace_id == workspace_id, channels.c.name == name
        )
    ).scalar()
    if found is None:
        raise ChannelNotFound(name)
    return int(found)


def _workspace_in(conn: Connection, workspace_id: int) -> tuple[ContentSettings, Policy]:
    """What ``settings_in`` and ``load_policy`` read, in one statement (a round trip
    less for every message the send API takes)."""
    row = conn.execute(_WORKSPACE, {"workspace_id": workspace_id}).one_or_none()
    if row is None:
        raise WorkspaceNotFound(str(workspace_id))
    settings = ContentSettings(row.signature, row.opt_out_text, plan_from_json(row.price_plan))
    return settings, PolicySettings.model_validate(row.compliance or {}).policy(row.timezone)
