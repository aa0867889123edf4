"""The gate on both databases: its three set queries, read as an id range for a dense
batch and as one array parameter otherwise, reach the same verdicts."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.audience.suppression import add_suppression
from echelon.compliance.gate import Candidate, Policy, Verdict, judge
from echelon.compliance.rules import BlockReason, Caps, QuietHours
from echelon.db.outbox import messages
from echelon.db.tables import contacts
from echelon.workspaces.service import Workspace

NOON = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NIGHT = datetime(2026, 11, 11, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
MORNING = datetime(2026, 11, 12, 0, 0, tzinfo=UTC)  # 08:00 next day in Shanghai
POLICY = Policy(QuietHours(), Caps())
PEOPLE = [
    ("13800138000", "是"),  # consents
    ("13900139000", "否"),  # no consent
    ("13700137000", "是"),  # opted out
    ("13600136000", "是"),  # has a message planned at noon
    ("13500135000", "是"),
    ("13400134000", "是"),
    *((f"1330013300{n}", "是") for n in range(4)),
]


@pytest.fixture
def people(engine: Engine, workspace: Workspace, tmp_path: Path) -> dict[str, tuple[int, str]]:
    path = tmp_path / "people.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["手机号", "营销同意"], *PEOPLE])
    import_contacts(
        engine,
        workspace=workspace,
        path=path,
        options=ContactImportOptions(consent_source="checkout_checkbox"),
        now=NOON,
    )
    add_suppression(
        engine,
        workspace_id=workspace.id,
        phone="13700137000",
        kind="opt_out",
        source="reply",
        reason="TD",
        now=NOON,
    )
    with engine.begin() as conn:
        found = {
            phone[3:]: (id_, phone)
            for id_, phone in conn.execute(select(contacts.c.id, contacts.c.phone))
        }
        planned_id, planned_phone = found["13600136000"]
        conn.execute(
            insert(messages).values(
                workspace_id=workspace.id,
                contact_id=planned_id,
                phone=planned_phone,
                kind="marketing",
                text="【星河商城】早鸟价",
                text_hash="h-earlier",
                parts=1,
                cost_e4=500,
                status="queued",
                due_at=NOON,
                created_at=NOON,
                updated_at=NOON,
            )
        )
    return found


def candidate(person: tuple[int, str], at: datetime = NOON, text: str = "h") -> Candidate:
    return Candidate(person[0], person[1], "marketing", text, at)


def verdicts(
    engine: Engine, ws: Workspace, batch: list[Candidate], **extra: object
) -> list[Verdict]:
    with engine.connect() as conn:
        return judge(conn, workspace_id=ws.id, policy=POLICY, candidates=batch, **extra)  # type: ignore[arg-type]


def test_each_refusal_and_the_quiet_hours(
    engine: Engine, workspace: Workspace, people: dict[str, tuple[int, str]]
) -> None:
    batch = [candidate(people[phone], NIGHT) for phone, _ in PEOPLE[:6]]
    assert verdicts(engine, workspace, batch) == [
        Verdict(None, MORNING),
        Verdict(BlockReason.NO_CONSENT, NIGHT),
        Verdict(BlockReason.OPT_OUT, NIGHT),
        Verdict(BlockReason.MIN_GAP, MORNING),  # 20 hours after the one planned at noon
        Verdict(None, MORNING),
        Verdict(None, MORNING),
    ]


def test_a_dense_batch_and_a_sparse_one_judge_as_one_at_a_time(
    engine: Engine, workspace: Workspace, people: dict[str, tuple[int, str]]
) -> None:
    everyone = [candidate(people[phone]) for phone, _ in PEOPLE]
    alone = [verdicts(engine, workspace, [c])[0] for c in everyone]
    assert [v.reason for v in alone] == [
        None,
        BlockReason.NO_CONSENT,
        BlockReason.OPT_OUT,
        BlockReason.MIN_GAP,
        None,
        None,
        *[None] * 4,
    ]
    assert verdicts(engine, workspace, everyone) == alone
    picked = [0, 2, 3, 9]
    sparse = [everyone[i] for i in picked]
    ids = sorted(c.contact_id for c in sparse)
    assert ids[-1] - ids[0] >= 2 * len(ids)  # read as an array, not as a range
    assert verdicts(engine, workspace, sparse) == [alone[i] for i in picked]


def test_a_batch_counts_against_itself_and_excludes_what_is_rejudged(
    engine: Engine, workspace: Workspace, people: dict[str, tuple[int, str]]
) -> None:
    first = people["13800138000"]
    twice = [candidate(first, NOON, "a"), candidate(first, NOON + timedelta(hours=1), "b")]
    assert [v.reason for v in verdicts(engine, workspace, twice)] == [None, BlockReason.MIN_GAP]
    planned = people["13600136000"]
    with engine.connect() as conn:
        message_id = conn.execute(
            select(messages.c.id).where(messages.c.contact_id == planned[0])
        ).scalar_one()
    again = [candidate(planned, NOON, "h-earlier")]
    assert verdicts(engine, workspace, again)[0].reason is BlockReason.DUPLICATE
    assert verdicts(engine, workspace, again, exclude_message_ids=[message_id]) == [
        Verdict(None, NOON)
    ]
