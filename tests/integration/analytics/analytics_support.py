"""An outbox in every state the dispatcher leaves messages in, written as it would be,
and a real HTTP endpoint for webhooks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from sqlalchemy import Connection, Engine, insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from echelon.campaigns.service import create_campaign
from echelon.content.templates import create_template
from echelon.db.outbox import channels, messages, replies
from echelon.db.tables import contacts
from echelon.db.tracking import clicks, complaints, conversions, links

NOW = datetime(2026, 11, 11, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
MORNING = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
EVENING = datetime(2026, 11, 11, 12, 30, tzinfo=UTC)  # 20:30 in Shanghai


@dataclass(frozen=True)
class Spec:
    """One message: its variant, channel (1, 2 or None), status, reason, latency."""

    variant: str
    channel: int | None
    status: str
    reason: str | None = None
    latency: float | None = None


# Twelve messages of one campaign; variant A goes in the morning, B in the evening.
SPECS = [
    Spec("A", 1, "delivered", latency=1.25),
    Spec("A", 1, "delivered", latency=2.55),
    Spec("A", 1, "delivered", latency=30.5),
    Spec("A", 2, "undelivered", "MK:0001"),
    Spec("B", 2, "delivered", latency=0.55),
    Spec("B", 2, "delivered", latency=1.05),
    Spec("B", 2, "expired"),
    Spec("B", None, "blocked", "opt_out"),
    Spec("B", None, "blocked", "no_consent"),
    Spec("A", 1, "queued"),
    Spec("B", 1, "rejected", "REJ"),
    Spec("A", 1, "failed", "no_route"),
]


@dataclass
class Outbox:
    workspace_id: int
    campaign_id: int
    channel_ids: dict[int, int] = field(default_factory=dict)
    contact_ids: list[int] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    link_ids: dict[int, int] = field(default_factory=dict)


def make_campaign(engine: Engine, workspace_id: int, name: str = "双11") -> int:
    create_template(
        engine,
        workspace_id=workspace_id,
        name=f"t-{name}",
        kind="marketing",
        body="会员日专享",
        signature="星河商城",
        actor="运营",
        now=MORNING,
    )
    return create_campaign(
        engine,
        workspace_id=workspace_id,
        name=name,
        template=f"t-{name}",
        audience={"kind": "all"},
        send_at=None,
        ends_at=None,
        throttle_per_second=None,
        budget_yuan=None,
        now=MORNING,
    ).id


def add_channel(conn: Connection, workspace_id: int, name: str) -> int:
    return int(
        conn.execute(
            insert(channels)
            .values(
                workspace_id=workspace_id,
                name=name,
                kind="smpp",
                config={},
                carriers=["china_mobile"],
                created_at=MORNING,
                updated_at=MORNING,
            )
            .returning(channels.c.id)
        ).scalar_one()
    )


def add_contact(
    conn: Connection, workspace_id: int, phone: str, carrier: str, province: str
) -> int:
    return int(
        conn.execute(
            insert(contacts)
            .values(
                workspace_id=workspace_id,
                phone=phone,
                carrier=carrier,
                province=province,
                created_at=MORNING,
                updated_at=MORNING,
            )
            .returning(contacts.c.id)
        ).scalar_one()
    )


def add_message(
    conn: Connection,
    outbox: Outbox,
    contact_id: int,
    spec: Spec,
    *,
    at: datetime,
    due: datetime = MORNING,
    campaign_id: int | None = None,
) -> int:
    sent = spec.status not in ("blocked", "queued", "failed")
    # The recipient's number, carrier and province, as planning records them.
    phone, carrier, province = conn.execute(
        select(contacts.c.phone, contacts.c.carrier, contacts.c.province).where(
            contacts.c.id == contact_id
        )
    ).one()
    values: dict[str, Any] = {
        "workspace_id": outbox.workspace_id,
        "contact_id": contact_id,
        "phone": phone,
        "carrier": carrier,
        "province": province,
        "campaign_id": campaign_id or outbox.campaign_id,
        "kind": "marketing",
        "text": "【星河商城】会员日专享，拒收请回复R",
        "text_hash": "0" * 32,
        "parts": 1,
        "cost_e4": 0 if spec.status == "blocked" else 600,
        "status": spec.status,
        "block_reason": spec.reason if spec.status == "blocked" else None,
        "error_code": spec.reason if spec.status != "blocked" else None,
        "variant": spec.variant,
        "due_at": due,
        "channel_id": outbox.channel_ids.get(spec.channel) if spec.channel else None,
        "submitted_at": at if sent else None,
        "done_at": (at + timedelta(seconds=spec.latency) if spec.latency else at if sent else None),
        "created_at": MORNING,
        "updated_at": at,
    }
    return int(
        conn.execute(insert(messages).values(**values).returning(messages.c.id)).scalar_one()
    )


def phone_of(conn: Connection, contact_id: int) -> str:
    return str(
        conn.execute(select(contacts.c.phone).where(contacts.c.id == contact_id)).scalar_one()
    )


def fill_outbox(engine: Engine, workspace_id: int) -> Outbox:
    """SPECS for campaign 双11, with clicks, conversions, an opt-out and a complaint:
    2 people clicked (one twice, and a preview of another's link), two bought
    (¥100 and ¥50.50), one opted out and one complained."""
    outbox = Outbox(workspace_id, make_campaign(engine, workspace_id))
    with engine.begin() as conn:
        outbox.channel_ids = {
            1: add_channel(conn, workspace_id, "移动一号"),
            2: add_channel(conn, workspace_id, "联通二号"),
        }
        for i, spec in enumerate(SPECS):
            carrier, province = ("china_mobile", "广东") if i < 6 else ("china_unicom", "北京")
            contact_id = add_contact(conn, workspace_id, f"+861380000{i:04d}", carrier, province)
            outbox.contact_ids.append(contact_id)
            at = MORNING if spec.variant == "A" else EVENING
            outbox.message_ids.append(add_message(conn, outbox, contact_id, spec, at=at))
        ids = outbox.message_ids
        for index, human in ((0, True), (0, True), (1, False), (4, True)):
            add_click(conn, outbox, index, human=human, at=EVENING + timedelta(minutes=5))
        for index, order, fen in ((0, "A1", 10_000), (4, "B1", 5_050)):
            conn.execute(
                insert(conversions).values(
                    workspace_id=workspace_id,
                    order_id=order,
                    message_id=ids[index],
                    campaign_id=outbox.campaign_id,
                    contact_id=outbox.contact_ids[index],
                    source="click",
                    amount_fen=fen,
                    occurred_at=NOW,
                    created_at=NOW,
                )
            )
        conn.execute(
            insert(replies).values(
                workspace_id=workspace_id,
                phone=phone_of(conn, outbox.contact_ids[5]),
                contact_id=outbox.contact_ids[5],
                message_id=ids[5],
                text="TD",
                action="opt_out",
                received_at=EVENING + timedelta(minutes=1),
            )
        )
        conn.execute(
            insert(complaints).values(
                workspace_id=workspace_id,
                phone=phone_of(conn, outbox.contact_ids[2]),
                complained_at=NOW,
                channel="移动一号",
                message_id=ids[2],
                campaign_id=outbox.campaign_id,
                created_at=NOW,
            )
        )
    return outbox


def add_click(conn: Connection, outbox: Outbox, index: int, *, human: bool, at: datetime) -> int:
    message_id = outbox.message_ids[index]
    link_id = outbox.link_ids.get(message_id)
    if link_id is None:
        link_id = outbox.link_ids[message_id] = conn.execute(
            insert(links)
            .values(
                workspace_id=outbox.workspace_id,
                code=f"c{message_id:07d}",
                contact_id=outbox.contact_ids[index],
                campaign_id=outbox.campaign_id,
                message_id=message_id,
                target_url="https://shop.example/",
                created_at=MORNING,
            )
            .returning(links.c.id)
        ).scalar_one()
    return int(
        conn.execute(
            insert(clicks)
            .values(
                workspace_id=outbox.workspace_id,
                link_id=link_id,
                message_id=message_id,
                contact_id=outbox.contact_ids[index],
                campaign_id=outbox.campaign_id,
                clicked_at=at,
                human=human,
                bot_reason=None if human else "agent",
            )
            .returning(clicks.c.id)
        ).scalar_one()
    )


@dataclass
class Endpoint:
    """A real HTTP server on 127.0.0.1 that keeps what it receives and answers with
    ``status`` (200 unless a test says otherwise)."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200


@contextmanager
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint(url="")

    async def receive(request: Request) -> Response:
        state.received.append((dict(request.headers), await request.body()))
        return Response(status_code=state.status)

    app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    )
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
