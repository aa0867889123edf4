"""Planning commits page by page: pages plan as one pass would, a plan stopped part-way
resumes after its cursor or is cancelled, and nothing is ever planned twice."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, update

from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.audience.suppression import add_suppression
from echelon.campaigns import planner, queries
from echelon.campaigns.planning import PlanningFailed
from echelon.campaigns.service import (
    CampaignStateError,
    campaign_status,
    cancel_campaign,
    create_campaign,
    preview_campaign,
    start_campaign,
)
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.engine import create_db_engine
from echelon.db.outbox import campaigns, messages
from echelon.workspaces.service import Workspace, update_settings

NOON = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
PEOPLE = [
    ["13800138000", "张三", "金卡", "是"],
    ["13900139000", "李四", "银卡", "是"],  # opted out
    ["13700137000", "王五", "金卡", "否"],
    ["13600136000", "赵六", "", "是"],  # no 会员等级: render fails
    ["13500135000", "", "金卡", "是"],
    ["13300133000", "孙七", "钻石卡", "是"],
    ["13200132000", "周八", "金卡", "是"],
]
EXPECTED = {
    "audience": 7,
    "planned": 4,
    "blocked": {"no_consent": 1, "opt_out": 1, "render_failed": 1},
    "parts": 4,
    "cost_yuan": "0.24",
}


@pytest.fixture
def shop(engine: Engine, workspace: Workspace, tmp_path: Path) -> Workspace:
    path = tmp_path / "people.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["手机号", "姓名", "会员等级", "营销同意"], *PEOPLE])
    import_contacts(
        engine,
        workspace=workspace,
        path=path,
        options=ContactImportOptions(consent_source="checkout_checkbox"),
        now=NOON,
    )
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    body = "{{ name | default('会员') }}您好，双11会员专享{{ 会员等级 }}券已到账"
    create_template(
        engine,
        workspace_id=workspace.id,
        name="d11",
        kind="marketing",
        body=body,
        signature=None,
        actor="运营",
        now=NOON,
    )
    submit_template(engine, workspace_id=workspace.id, name="d11", actor="运营", now=NOON)
    approve_template(engine, workspace_id=workspace.id, name="d11", actor="审核", now=NOON)
    add_suppression(
        engine,
        workspace_id=workspace.id,
        phone="13900139000",
        kind="opt_out",
        source="reply",
        reason="TD",
        now=NOON,
    )
    create_campaign(
        engine,
        workspace_id=workspace.id,
        name="双11",
        template="d11",
        audience={"kind": "all"},
        send_at=None,
        ends_at=None,
        throttle_per_second=None,
        budget_yuan=None,
        now=NOON,
    )
    return workspace


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "PAGE", 2)


def outcome(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: summary[key] for key in EXPECTED}


def messages_per_contact(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(func.count()).select_from(messages).group_by(messages.c.contact_id)
            ).scalars()
        )


def cursor_of(engine: Engine) -> tuple[str, int | None]:
    with engine.connect() as conn:
        row = conn.execute(select(campaigns.c.status, campaigns.c.planned_through)).one()
    return row.status, row.planned_through


def test_pages_plan_as_one_pass_and_as_the_preview(engine: Engine, shop: Workspace) -> None:
    preview = preview_campaign(engine, workspace_id=shop.id, name="双11", samples=9, now=NOON)
    assert outcome(preview) == EXPECTED
    assert len(preview["samples"]) == 4
    pages: list[int] = []
    started = start_campaign(
        engine,
        workspace_id=shop.id,
        name="双11",
        now=NOON,
        progress=lambda done, _total: pages.append(done),
    )
    assert outcome(started) == EXPECTED
    assert pages == [2, 2, 2, 1]
    assert messages_per_contact(engine) == [1] * 7
    assert cursor_of(engine) == ("running", None)


class WriteFails(Exception):
    pass


def fail_on_page(monkeypatch: pytest.MonkeyPatch, page: int) -> None:
    """The ``page``-th page written raises, as a crash between pages would stop a plan."""
    real = queries.write_planned
    written: list[int] = []

    def write_planned(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        written.append(len(rows))
        if len(written) == page:
            raise WriteFails
        real(conn, rows)

    monkeypatch.setattr(queries, "write_planned", write_planned)


def test_a_plan_stopped_part_way_resumes_after_its_cursor(
    engine: Engine, shop: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_on_page(monkeypatch, 3)
    with pytest.raises(WriteFails):
        start_campaign(engine, workspace_id=shop.id, name="双11", now=NOON)
    # Two pages are in, and nothing of the third: the campaign says it is not done.
    assert messages_per_contact(engine) == [1] * 4
    status, cursor = cursor_of(engine)
    with engine.connect() as conn:
        fourth = conn.execute(select(func.max(messages.c.contact_id))).scalar_one()
    assert (status, cursor) == ("planning", fourth)
    assert campaign_status(engine, workspace_id=shop.id, name="双11")["campaign"]["status"] == (
        "planning"
    )
    monkeypatch.undo()
    monkeypatch.setattr(planner, "PAGE", 2)
    resumed = start_campaign(engine, workspace_id=shop.id, name="双11", now=NOON)
    assert outcome(resumed) == EXPECTED
    assert messages_per_contact(engine) == [1] * 7
    assert cursor_of(engine) == ("running", None)


def test_a_plan_stopped_part_way_can_be_cancelled(
    engine: Engine, shop: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_on_page(monkeypatch, 2)
    with pytest.raises(WriteFails):
        start_campaign(engine, workspace_id=shop.id, name="双11", now=NOON)
    monkeypatch.undo()
    # The first page: 张三 queued, 李四 blocked (opted out).
    assert cancel_campaign(engine, workspace_id=shop.id, name="双11", now=NOON) == 1
    status = campaign_status(engine, workspace_id=shop.id, name="双11")
    assert status["by_status"] == {"cancelled": 1, "blocked": 1}
    with pytest.raises(CampaignStateError):
        start_campaign(engine, workspace_id=shop.id, name="双11", now=NOON)


def test_a_second_planner_stops_rather_than_plan_twice(engine: Engine, shop: Workspace) -> None:
    def another_process_moves_on(_done: int, _total: int) -> None:
        with engine.begin() as conn:
            conn.execute(update(campaigns).values(planned_through=10**9))

    with pytest.raises(CampaignStateError, match="另一个进程"):
        start_campaign(
            engine,
            workspace_id=shop.id,
            name="双11",
            now=NOON,
            progress=another_process_moves_on,
        )
    assert set(messages_per_contact(engine)) <= {1}


def test_sqlite_is_free_for_other_writers_between_pages(engine: Engine, shop: Workspace) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writers never wait for a plan")
    # Another process (the dispatcher, a receipt) that waits at most 50 ms for the lock.
    other = sqlite3.connect(str(engine.url.database), timeout=0.05, isolation_level=None)
    writes: list[int] = []

    def write_elsewhere(_done: int, _total: int) -> None:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE workspaces SET name = name")
        other.execute("COMMIT")
        writes.append(1)

    start_campaign(engine, workspace_id=shop.id, name="双11", now=NOON, progress=write_elsewhere)
    other.close()
    assert len(writes) == 4


def test_a_text_that_cannot_be_composed_stops_the_plan_resumably(
    engine: Engine, shop: Workspace, tmp_path: Path
) -> None:
    def load(name: str) -> None:
        path = tmp_path / "one.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows([["手机号", "姓名"], ["13200132000", name]])
        import_contacts(
            engine,
            workspace=shop,
            path=path,
            options=ContactImportOptions(consent_source="checkout_checkbox"),
            now=NOON,
        )

    load("【周八】")  # the last page: the signature's brackets in the body
    with pytest.raises(PlanningFailed) as failed:
        start_campaign(engine, workspace_id=shop.id, name="双11", now=NOON)
    assert (failed.value.code, failed.value.http_status) == ("body_has_signature", 422)
    assert "【】" in failed.value.message
    assert cursor_of(engine)[0] == "planning"
    assert messages_per_contact(engine) == [1] * 6
    load("周八")
    assert outcome(start_campaign(engine, workspace_id=shop.id, name="双11", now=NOON)) == EXPECTED
    assert messages_per_contact(engine) == [1] * 7


def test_the_planning_process_reads_without_the_write_lock(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL readers never hold a writer up")
    reader = create_db_engine(engine.url.render_as_string(False), read_only=True)
    other = sqlite3.connect(str(engine.url.database), timeout=0.05, isolation_level=None)
    with reader.connect() as conn:
        conn.execute(select(func.count()).select_from(messages)).scalar_one()
        # Mid-"transaction" for SQLAlchemy, yet a writer gets in at once.
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE workspaces SET name = name")
        other.execute("COMMIT")
        conn.execute(select(func.count()).select_from(messages)).scalar_one()
    other.close()
    reader.dispose()
