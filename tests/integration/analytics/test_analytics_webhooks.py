"""Outgoing webhooks against a real HTTP endpoint, on both databases."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from analytics_support import NOW, Outbox, add_click, endpoint, fill_outbox
from sqlalchemy import Connection, Engine, insert, select

from echelon.analytics.webhook_fanout import fan_out
from echelon.analytics.webhook_worker import (
    BACKOFF,
    MAX_ATTEMPTS,
    Round,
    deliver_due,
    run_webhook_worker,
)
from echelon.analytics.webhooks import (
    add_webhook,
    enqueue_test,
    list_deliveries,
    list_webhooks,
    remove_webhook,
    sign,
)
from echelon.db.outbox import receipts, replies
from echelon.db.tables import suppressions
from echelon.db.tracking import conversions, webhook_deliveries
from echelon.errors import InvalidInput
from echelon.workspaces.service import Workspace


@pytest.fixture
def outbox(engine: Engine, workspace: Workspace) -> Outbox:
    return fill_outbox(engine, workspace.id)


def deliver(
    engine: Engine, *, now: datetime | None = None, delivery_id: int | None = None
) -> Round:
    async def go() -> Round:
        async with httpx.AsyncClient() as client:
            return await deliver_due(engine, client, now=now, delivery_id=delivery_id)

    return asyncio.run(go())


def happen(conn: Connection, outbox: Outbox, at: datetime) -> None:
    """One of each event, and a preview click and an unmatched receipt that send nothing yet."""
    add_click(conn, outbox, 4, human=True, at=at)
    add_click(conn, outbox, 5, human=False, at=at)
    w, ids = outbox.workspace_id, outbox.message_ids
    conn.execute(
        insert(conversions).values(
            workspace_id=w,
            order_id="C9",
            message_id=ids[1],
            campaign_id=outbox.campaign_id,
            contact_id=outbox.contact_ids[1],
            source="delivery",
            amount_fen=12_345,
            occurred_at=at,
            created_at=at,
        )
    )
    conn.execute(
        insert(replies).values(
            workspace_id=w, phone="+8613800000001", message_id=ids[1], text="好的", received_at=at
        )
    )
    conn.execute(
        insert(suppressions).values(
            workspace_id=w, phone="+8613800000001", kind="opt_out", source="reply", created_at=at
        )
    )
    conn.execute(
        insert(suppressions).values(
            workspace_id=w, phone="+8613800000009", kind="blacklist", source="cli", created_at=at
        )
    )
    for provider_id, message_id in (("P1", ids[0]), ("P2", None)):
        conn.execute(
            insert(receipts).values(
                channel_id=outbox.channel_ids[1],
                workspace_id=w,
                provider_id=provider_id,
                status="delivered",
                done_at=at,
                raw="id:P1 stat:DELIVRD",
                received_at=at,
                message_id=message_id,
            )
        )


def test_events_reach_the_endpoint_once_and_signed(engine: Engine, outbox: Outbox) -> None:
    with endpoint() as receiver:
        hook, secret = add_webhook(
            engine, workspace_id=outbox.workspace_id, url=receiver.url, now=NOW
        )
        assert hook.events == ["receipt", "reply", "opt_out", "click", "conversion"]
        with engine.begin() as conn:
            happen(conn, outbox, NOW)
        # Nothing is passed on before it is LAG old; the history before the hook never.
        assert fan_out(engine, now=NOW + timedelta(seconds=1)) == 0
        assert fan_out(engine, now=NOW + timedelta(seconds=10)) == 5
        assert fan_out(engine, now=NOW + timedelta(seconds=20)) == 0
        done = deliver(engine, now=NOW + timedelta(seconds=20))
        assert (done.delivered, done.retrying, done.failed) == (5, 0, 0)
        received = receiver.received
    events: dict[str, dict[str, Any]] = {}
    for headers, body in received:
        timestamp = int(headers["x-echelon-timestamp"])
        assert headers["x-echelon-signature"] == sign(secret, timestamp, body)
        assert headers["content-type"] == "application/json"
        document = json.loads(body)
        assert document["event"] == headers["x-echelon-event"]
        assert document["id"] == headers["x-echelon-delivery"]
        events[document["event"]] = document["data"]
    assert set(events) == {"receipt", "reply", "opt_out", "click", "conversion"}
    assert events["click"]["message_id"] == outbox.message_ids[4]
    assert events["click"]["url"] == "https://shop.example/"
    assert events["conversion"] | {"occurred_at": None} == {
        "order_id": "C9",
        "message_id": outbox.message_ids[1],
        "campaign_id": outbox.campaign_id,
        "phone": "+8613800000001",
        "source": "delivery",
        "amount": "123.45",
        "occurred_at": None,
    }
    assert events["receipt"]["message_id"] == outbox.message_ids[0]
    assert events["reply"]["text"] == "好的" and events["reply"]["opt_out"] is False
    assert events["opt_out"]["phone"] == "+8613800000001"
    # A receipt not yet tied to its message waits, then goes without it.
    assert fan_out(engine, now=NOW + timedelta(minutes=11)) == 1
    with engine.connect() as conn:
        late = conn.execute(
            select(webhook_deliveries.c.payload).where(webhook_deliveries.c.status == "pending")
        ).scalar_one()
    assert (late["provider_id"], late["message_id"]) == ("P2", None)


def test_a_failing_endpoint_is_retried_with_backoff_then_given_up(
    engine: Engine, outbox: Outbox
) -> None:
    with endpoint() as receiver:
        receiver.status = 500
        add_webhook(
            engine, workspace_id=outbox.workspace_id, url=receiver.url, events=["click"], now=NOW
        )
        with engine.begin() as conn:
            add_click(conn, outbox, 4, human=True, at=NOW)
        assert fan_out(engine, now=NOW + timedelta(seconds=10)) == 1
        moment = NOW + timedelta(seconds=10)
        for attempt in range(1, MAX_ATTEMPTS):
            assert deliver(engine, now=moment).retrying == 1
            # Not due again until the backoff has passed.
            assert (
                deliver(engine, now=moment + BACKOFF[attempt - 1] - timedelta(seconds=1)) == Round()
            )
            moment += BACKOFF[attempt - 1]
        assert deliver(engine, now=moment).failed == 1
        assert len(receiver.received) == MAX_ATTEMPTS
    (log,) = list_deliveries(engine, workspace_id=outbox.workspace_id)
    assert (log["status"], log["attempts"], log["last_status_code"]) == (
        "failed",
        MAX_ATTEMPTS,
        500,
    )
    assert log["last_error"].startswith("HTTP 500")
    # Every attempt carries the same delivery id, for the receiver to deduplicate.
    assert len({headers["x-echelon-delivery"] for headers, _ in receiver.received}) == 1


def test_an_unreachable_endpoint_is_retried(engine: Engine, outbox: Outbox) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook, _ = add_webhook(
        engine, workspace_id=outbox.workspace_id, url=f"http://127.0.0.1:{port}/hook", now=NOW
    )
    delivery = enqueue_test(engine, workspace_id=outbox.workspace_id, webhook_id=hook.id, now=NOW)
    done = deliver(engine, now=NOW, delivery_id=delivery)
    assert done.retrying == 1
    (listed,) = list_webhooks(engine, workspace_id=outbox.workspace_id)
    assert (listed.pending, listed.delivered) == (1, 0)
    assert listed.last_error is not None and "Connect" in listed.last_error


def test_a_test_event_is_delivered_at_once(engine: Engine, workspace: Workspace) -> None:
    with endpoint() as receiver:
        hook, secret = add_webhook(engine, workspace_id=workspace.id, url=receiver.url, now=NOW)
        delivery = enqueue_test(engine, workspace_id=workspace.id, webhook_id=hook.id, now=NOW)
        assert deliver(engine, delivery_id=delivery).delivered == 1
        ((headers, body),) = receiver.received
    assert json.loads(body)["event"] == "test"
    assert headers["x-echelon-signature"] == sign(secret, int(headers["x-echelon-timestamp"]), body)
    (listed,) = list_webhooks(engine, workspace_id=workspace.id)
    assert (listed.delivered, listed.pending, listed.failed) == (1, 0, 0)
    remove_webhook(engine, workspace_id=workspace.id, webhook_id=hook.id)
    assert list_webhooks(engine, workspace_id=workspace.id) == []
    assert list_deliveries(engine, workspace_id=workspace.id) == []


@pytest.mark.parametrize(
    ("url", "events"),
    [("ftp://x.cn/hook", ()), ("https://", ()), ("https://x.cn/hook", ("open",))],
)
def test_bad_webhooks_are_refused(
    engine: Engine, workspace: Workspace, url: str, events: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidInput):
        add_webhook(engine, workspace_id=workspace.id, url=url, events=events, now=NOW)
    assert list_webhooks(engine, workspace_id=workspace.id) == []


def test_the_worker_fans_out_and_delivers_until_stopped(engine: Engine, outbox: Outbox) -> None:
    with endpoint() as receiver:
        add_webhook(
            engine, workspace_id=outbox.workspace_id, url=receiver.url, events=["click"], now=NOW
        )
        with engine.begin() as conn:
            add_click(conn, outbox, 4, human=True, at=datetime.now(UTC) - timedelta(minutes=1))

        async def run() -> None:
            stop = asyncio.Event()
            worker = asyncio.create_task(run_webhook_worker(engine, stop=stop, interval=0.05))
            for _ in range(200):
                if receiver.received:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(worker, timeout=10)

        asyncio.run(run())
        assert len(receiver.received) == 1
