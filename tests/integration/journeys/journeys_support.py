"""What the journey tests share: a shop with consenting members and approved
templates, set up through the same service functions people use, and a clock that
the tests move by hand."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from echelon.audience.records import record_events, upsert_contacts
from echelon.compliance.policy import save_settings
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.journeys import journey_enrolments
from echelon.db.outbox import messages
from echelon.journeys.batch import PassSummary
from echelon.journeys.runner import JourneyRunner
from echelon.journeys.service import activate_journey, create_journey
from echelon.workspaces.service import Workspace, update_settings

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
PHONES = [f"1380013800{i}" for i in range(10)]


def e164(phone: str) -> str:
    return f"+86{phone}"


def open_shop(engine: Engine, ws: Workspace, phones: list[str] = PHONES) -> None:
    """Members with marketing consent, a signature, relaxed per-number limits (these
    journeys send more often than a shop would; the gate test puts them back) and
    approved templates."""
    update_settings(engine, workspace_id=ws.id, signature="星河商城")
    upsert_contacts(
        engine,
        workspace_id=ws.id,
        records=[{"phone": p, "name": f"会员{i}", "consent": True} for i, p in enumerate(phones)],
        consent_source="test",
        list_name=None,
        now=T0 - timedelta(days=400),
    )
    with engine.begin() as conn:
        save_settings(
            conn,
            ws.id,
            {"per_minute": 10, "per_hour": 20, "per_day": 50, "marketing_min_gap_hours": 0},
        )
    for name, body in TEMPLATES.items():
        template(engine, ws, name, body)


TEMPLATES = {
    "你好": "{{ name | default('亲') }}，欢迎加入会员",
    "提醒": "{{ name | default('亲') }}，您加购的{{ category | default('商品') }}还在",
    "优惠": "{{ name | default('亲') }}，送您专属券{{ coupon }}",
    "点我": "{{ name | default('亲') }}，新品上架 {{ link('https://shop.example.com/new') }}",
    "再会": "{{ name | default('亲') }}，期待再见",
}


def template(engine: Engine, ws: Workspace, name: str, body: str, kind: str = "marketing") -> None:
    create_template(
        engine,
        workspace_id=ws.id,
        name=name,
        kind=kind,
        body=body,
        actor="运营",
        now=T0 - timedelta(days=1),
    )
    submit_template(engine, workspace_id=ws.id, name=name, actor="运营", now=T0)
    approve_template(engine, workspace_id=ws.id, name=name, actor="审核", now=T0)


def journey(
    engine: Engine, ws: Workspace, name: str, definition: dict[str, Any], at: datetime = T0
) -> None:
    create_journey(engine, workspace_id=ws.id, name=name, definition=definition, now=at)
    activate_journey(engine, workspace_id=ws.id, name=name, now=at)


def events(
    engine: Engine, ws: Workspace, kind: str, phones: list[str], at: datetime, **extra: Any
) -> None:
    record_events(
        engine,
        workspace_id=ws.id,
        records=[
            {"phone": p, "type": kind, "occurred_at": at.isoformat(), **extra} for p in phones
        ],
        now=at,
    )


def run_through(
    runner: JourneyRunner, start: datetime, end: datetime, step: timedelta
) -> PassSummary:
    """Passes at every ``step`` from ``start`` to ``end`` (both included)."""
    total = PassSummary()
    moment = start
    while moment <= end:
        total.add(runner.advance(moment))
        moment += step
    return total


def sent(engine: Engine) -> list[tuple[str, str, str, str | None]]:
    """(phone, step, status, block reason) of every journey message, in order."""
    m = messages.c
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(m.phone, m.journey_step, m.status, m.block_reason)
                .where(m.journey_id.is_not(None))
                .order_by(m.id)
            )
        ]


def local(day: str, clock: str) -> datetime:
    """A Shanghai wall-clock time, as the aware UTC moment the runner is given."""
    return datetime.fromisoformat(f"{day}T{clock}+08:00").astimezone(UTC)


def entered(engine: Engine) -> list[tuple[str, str]]:
    """(phone, entry key) of every enrolment, by phone."""
    from echelon.db.tables import contacts

    e = journey_enrolments.c
    with engine.connect() as conn:
        return sorted(
            (phone[3:], key)
            for phone, key in conn.execute(
                select(contacts.c.phone, e.entry_key).join(contacts, contacts.c.id == e.contact_id)
            )
        )


def steps_by_phone(engine: Engine) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for phone, step, _, _ in sent(engine):
        found.setdefault(phone, []).append(step)
    return found


def enrolments(engine: Engine) -> Counter[tuple[str, str, str | None]]:
    """(status, step, exit reason) counts."""
    e = journey_enrolments.c
    with engine.connect() as conn:
        return Counter(
            (status, step, reason)
            for status, step, reason in conn.execute(select(e.status, e.step, e.exit_reason))
        )
