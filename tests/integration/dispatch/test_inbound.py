"""Receipts and replies on both databases: idempotent, early receipts kept, opt-outs at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, insert, select, update

from echelon.access.models import AuditEntry
from echelon.access.service import list_audit
from echelon.audience.consent import grant_consent
from echelon.audience.contacts import count_contacts, get_contact
from echelon.audience.records import erase_contact
from echelon.audience.suppression import suppression_kinds
from echelon.channels.base import InboundReply, Receipt, SubmitOutcome
from echelon.channels.smpp import SmppConfig
from echelon.db.outbox import messages, receipts, replies
from echelon.dispatch.channel_admin import add_channel
from echelon.dispatch.dispatcher import Dispatcher
from echelon.dispatch.inbound import (
    Ending,
    Linked,
    apply_pending_receipts,
    end_by_stored_receipts,
    record_receipts,
    record_reply,
    store_linked_receipts,
)
from echelon.dispatch.queries import Claimed
from echelon.dispatch.rules import OptOutKeywords
from echelon.dispatch.settings import save_dispatch_settings
from echelon.workspaces.service import Workspace

NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)


@pytest.fixture
def channel_id(engine: Engine, workspace: Workspace) -> int:
    config = SmppConfig(host="127.0.0.1", port=2775, system_id="shop", password=SecretStr("pw"))
    record = add_channel(
        engine,
        workspace_id=workspace.id,
        name="主通道",
        config=config,
        carriers=["all"],
        weight=1,
        priority=0,
        now=NOW,
    )
    return record.id


def outbox_row(engine: Engine, ws: Workspace, phone: str, **values: object) -> int:
    grant_consent(
        engine,
        workspace_id=ws.id,
        phone=phone,
        purpose="marketing",
        source="t",
        proof=None,
        now=NOW,
    )
    contact = get_contact(engine, workspace_id=ws.id, phone=phone)
    row = {
        "workspace_id": ws.id,
        "contact_id": contact.id,
        "phone": contact.phone,
        "kind": "marketing",
        "text": "【店】你好",
        "text_hash": "h",
        "parts": 1,
        "cost_e4": 600,
        "status": "queued",
        "due_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    row.update(values)
    with engine.begin() as conn:
        return int(
            conn.execute(insert(messages).values(**row).returning(messages.c.id)).scalar_one()
        )


def sent_row(engine: Engine, ws: Workspace, phone: str, channel_id: int, provider_id: str) -> int:
    """A message submitted on the channel as ``provider_id``, awaiting its receipt."""
    return outbox_row(
        engine, ws, phone, status="submitted", channel_id=channel_id,
        provider_id=provider_id, submitted_at=NOW,
    )  # fmt: skip


def receipt(provider_id: str, status: str = "delivered", final: bool = True) -> Receipt:
    return Receipt(
        provider_id=provider_id,
        status=status,
        error_code=None if status == "delivered" else "MK:0001",
        done_at=NOW + timedelta(seconds=2),
        submitted_at=NOW,
        raw=f"id:{provider_id} stat:{status}",
        final=final,
    )  # type: ignore[arg-type]


def status_of(engine: Engine, message_id: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(messages.c.status, messages.c.error_code).where(messages.c.id == message_id)
        ).one()
    return row.status, row.error_code


def test_a_receipt_applies_once(engine: Engine, workspace: Workspace, channel_id: int) -> None:
    sent = outbox_row(
        engine,
        workspace,
        "13800138000",
        status="submitted",
        channel_id=channel_id,
        provider_id="p1",
        submitted_at=NOW,
    )
    failed = outbox_row(
        engine,
        workspace,
        "13900139000",
        status="submitted",
        channel_id=channel_id,
        provider_id="p2",
        submitted_at=NOW,
    )
    batch = [receipt("p1"), receipt("p2", "undelivered"), receipt("p1", "enroute", final=False)]
    assert record_receipts(engine, channel_id=channel_id, received=batch, now=NOW) == 2
    assert status_of(engine, sent) == ("delivered", None)
    assert status_of(engine, failed) == ("undelivered", "MK:0001")
    assert record_receipts(engine, channel_id=channel_id, received=batch, now=NOW) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(receipts)).scalar_one() == 2
    assert status_of(engine, sent) == ("delivered", None)


def test_an_empty_number_reported_before_its_submit_response_is_still_listed_invalid(
    engine: Engine, workspace: Workspace, channel_id: int
) -> None:
    # The SMSC's 空号 receipt can overtake its submit_sm_resp: the message is ended only
    # when the response is recorded, and the number must be learnt then.
    with engine.begin() as conn:
        save_dispatch_settings(conn, workspace.id, {"invalid_after": 1})
    early = outbox_row(engine, workspace, "13800138000", status="submitting", channel_id=channel_id)
    assert (
        record_receipts(
            engine, channel_id=channel_id, received=[receipt("p9", "undelivered")], now=NOW
        )
        == 1
    )
    with engine.connect() as conn:
        phone, contact_id = conn.execute(
            select(messages.c.phone, messages.c.contact_id).where(messages.c.id == early)
        ).one()
        assert suppression_kinds(conn, workspace_id=workspace.id, phones={phone}) == {}
    claimed = Claimed(
        id=early, workspace_id=workspace.id, contact_id=contact_id, phone=phone,
        kind="marketing", text="【店】你好", text_hash="h", due_at=NOW, expires_at=None,
        channel_id=channel_id, attempts=0, campaign_id=None, reply_id=None,
        carrier="china_mobile",
    )  # fmt: skip
    accepted = SubmitOutcome(
        early, ok=True, provider_id="p9", provider_ids=("p9",), accepted_at=NOW
    )
    Dispatcher(engine)._record_outcomes([(channel_id, [claimed], [accepted], NOW)])
    assert status_of(engine, early) == ("undelivered", "MK:0001")
    with engine.connect() as conn:
        listed = suppression_kinds(conn, workspace_id=workspace.id, phones={phone})
    assert "invalid" in listed[phone]


def test_a_message_whose_later_part_was_lost_ends_as_its_first_parts_receipt_says(
    engine: Engine, workspace: Workspace, channel_id: int
) -> None:
    # Two parts: the first accepted (and its receipt already in), the second's response
    # lost — the outcome is unknown, but the SMSC has the message and said how it ended.
    lost = outbox_row(engine, workspace, "13800138000", status="submitting", channel_id=channel_id)
    claimed = Claimed(
        id=lost, workspace_id=workspace.id, contact_id=0, phone="+8613800138000",
        kind="marketing", text="【店】你好", text_hash="h", due_at=NOW, expires_at=None,
        channel_id=channel_id, attempts=0, campaign_id=None, reply_id=None,
        carrier="china_mobile",
    )  # fmt: skip
    unknown = SubmitOutcome(lost, ok=False, unknown=True, error_code="response_timeout")
    ending = Ending("delivered", None, NOW + timedelta(seconds=1))
    awaiting = Dispatcher(engine)._record_outcomes(
        [(channel_id, [claimed], [unknown], NOW)], {lost: ending}, relink=set()
    )
    assert awaiting == []
    assert status_of(engine, lost) == ("delivered", None)


def test_a_receipt_before_its_submit_response_waits(
    engine: Engine, workspace: Workspace, channel_id: int
) -> None:
    early = outbox_row(engine, workspace, "13800138000", status="submitting", channel_id=channel_id)
    assert record_receipts(engine, channel_id=channel_id, received=[receipt("p9")], now=NOW) == 1
    assert status_of(engine, early) == ("submitting", None)
    with engine.begin() as conn:
        conn.execute(
            update(messages)
            .where(messages.c.id == early)
            .values(status="submitted", provider_id="p9", submitted_at=NOW)
        )
        assert apply_pending_receipts(conn, channel_id=channel_id, linked={"p9": early}, now=NOW)
    assert status_of(engine, early) == ("delivered", None)
    with engine.connect() as conn:
        assert conn.execute(select(receipts.c.message_id)).scalar_one() == early


def test_a_new_lease_holder_ends_what_its_predecessor_stored_but_did_not_apply(
    engine: Engine, workspace: Workspace, channel_id: int
) -> None:
    # The dispatcher stores a receipt linked and acknowledges it, keeping the ending in
    # memory for the moment until its message's outcome is written; a worker killed in
    # that moment leaves the receipt stored and the message awaiting it.
    submitted = sent_row(engine, workspace, "13800138000", channel_id, "p1")
    in_flight = outbox_row(
        engine, workspace, "13900139000", status="submitting", channel_id=channel_id
    )
    untouched = sent_row(engine, workspace, "13700137000", channel_id, "p3")
    with engine.begin() as conn:
        stored, _ = store_linked_receipts(
            conn,
            [
                Linked(channel_id, workspace.id, submitted, receipt("p1"), NOW),
                Linked(channel_id, workspace.id, in_flight, receipt("p2", "undelivered"), NOW),
            ],
        )
        assert stored == 2
        assert end_by_stored_receipts(conn, channel_ids=[channel_id], now=NOW) == 2
    assert status_of(engine, submitted) == ("delivered", None)
    assert status_of(engine, in_flight) == ("undelivered", "MK:0001")
    assert status_of(engine, untouched) == ("submitted", None)


def test_a_receipt_stored_linked_twice_is_kept_once(
    engine: Engine, workspace: Workspace, channel_id: int
) -> None:
    sent = sent_row(engine, workspace, "13800138000", channel_id, "p1")
    twice = [Linked(channel_id, workspace.id, sent, receipt("p1"), NOW)] * 2
    with engine.begin() as conn:
        assert store_linked_receipts(conn, twice)[0] == 1
        assert store_linked_receipts(conn, twice)[0] == 0
        assert conn.execute(select(func.count()).select_from(receipts)).scalar_one() == 1


def test_forgetting_a_number_deletes_its_receipts(
    engine: Engine, workspace: Workspace, channel_id: int
) -> None:
    kept = sent_row(engine, workspace, "13900139000", channel_id, "p2")
    gone = sent_row(engine, workspace, "13800138000", channel_id, "p1")
    with engine.begin() as conn:
        store_linked_receipts(
            conn,
            [
                Linked(channel_id, workspace.id, gone, receipt("p1"), NOW),
                Linked(channel_id, workspace.id, kept, receipt("p2"), NOW),
            ],
        )
    erased = erase_contact(engine, workspace_id=workspace.id, phone="13800138000")
    assert erased["receipts"] == 1
    with engine.connect() as conn:
        assert list(conn.execute(select(receipts.c.message_id)).scalars()) == [kept]


def test_a_lost_submit_response_is_reconciled_by_its_receipt(
    engine: Engine, workspace: Workspace, channel_id: int
) -> None:
    lost = outbox_row(
        engine,
        workspace,
        "13800138000",
        status="unknown",
        channel_id=channel_id,
        provider_id="p5",
        submitted_at=NOW,
    )
    record_receipts(engine, channel_id=channel_id, received=[receipt("p5")], now=NOW)
    assert status_of(engine, lost) == ("delivered", None)


@pytest.mark.parametrize(
    ("text", "opted_out"), [("TD", True), ("我要退订", True), ("好的谢谢", False)]
)
def test_replies_are_kept_and_opt_outs_take_effect(
    engine: Engine, workspace: Workspace, channel_id: int, text: str, opted_out: bool
) -> None:
    message = outbox_row(
        engine,
        workspace,
        "13800138000",
        status="delivered",
        channel_id=channel_id,
        provider_id="p1",
        submitted_at=NOW,
    )
    reply = InboundReply(
        source="+8613800138000",
        destination="106900001",
        extension="01",
        text=text,
        received_at=NOW + timedelta(minutes=3),
    )
    outcome = record_reply(
        engine,
        workspace_id=workspace.id,
        channel_id=channel_id,
        reply=reply,
        keywords=OptOutKeywords.of(),
        now=NOW,
    )
    assert outcome.message_id == message
    assert outcome.opted_out is opted_out
    with engine.connect() as conn:
        stored = conn.execute(select(replies.c.text, replies.c.action)).one()
    assert stored.text == text
    counts = count_contacts(engine, workspace_id=workspace.id)
    assert counts["marketing_reachable"] == (0 if opted_out else 1)
    profile = get_contact(engine, workspace_id=workspace.id, phone="13800138000")
    assert ("opt_out" in profile.suppressions) is opted_out
    assert (profile.consents[0].revoked_at is not None) is opted_out
    # An opt-out is audited in the transaction that made it: the request and the
    # suppression, both by the channel the subscriber's reply came in on.
    lines = [(e.actor, e.action, e.target) for e in _audit(engine, workspace)]
    actor, target = f"channel:{channel_id}", "phone:+8613800138000"
    if not opted_out:
        assert lines == []
        return
    assert lines == [(actor, "suppression.add", target), (actor, "consent.revoke", target)]
    # Saying it again is audited again, but suppresses nothing new.
    record_reply(
        engine, workspace_id=workspace.id, channel_id=channel_id, reply=reply,
        keywords=OptOutKeywords.of(), now=NOW + timedelta(minutes=5),
    )  # fmt: skip
    again = _audit(engine, workspace)
    assert [(e.action, e.detail["revoked"]) for e in again[:1]] == [("consent.revoke", False)]
    assert [e.action for e in again].count("suppression.add") == 1


def _audit(engine: Engine, workspace: Workspace) -> list[AuditEntry]:
    return list(list_audit(engine, workspace_id=workspace.id, limit=50))
