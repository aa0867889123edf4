"""Events and suppression on both databases."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from echelon.audience.consent import grant_consent, revoke_consent
from echelon.audience.contacts import count_contacts, get_contact
from echelon.audience.importing import import_events, import_suppressions
from echelon.audience.suppression import (
    UnknownSuppressionKind,
    add_suppression,
    list_suppressions,
    remove_suppression,
    suppression_kinds,
)
from echelon.db.tables import events
from echelon.errors import InvalidInput, NotFound
from echelon.workspaces.service import Workspace

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


ORDERS = [
    ["手机号", "事件类型", "时间", "金额", "订单号", "品类", "优惠券", "渠道"],
    ["13800138000", "购买", "2026-11-11 00:05:00", "¥1,299.00", "A1", "数码", "D11", "app"],
    ["13800138000", "cart_add", "2026-11-10 20:00", "", "", "母婴", "", "app"],
    ["13900139000", "signup", "2026-11-01T09:00:00+08:00", "", "", "", "", "web"],
    ["13900139000", "purchase", "2026-11-02 10:00", "-5", "B1", "", "", ""],
    ["13700137000", "Bad Type!", "2026-11-02 10:00", "", "", "", "", ""],
    ["13700137000", "shipment", "昨天", "", "", "", "", ""],
    ["13800138000", "购买", "2026-11-11 00:05:00", "¥1,299.00", "A1", "数码", "D11", "app"],
]


def test_events_import_creates_contacts_without_consent_and_is_idempotent(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "orders.csv", ORDERS)
    report = import_events(
        engine, workspace=workspace, path=path, columns={}, rejects_path=None, now=NOW
    ).to_json()
    assert (report["rows"], report["imported"], report["rejected"]) == (7, 3, 3)
    assert report["duplicates"] == 1 and report["contacts_created"] == 2
    assert count_contacts(engine, workspace_id=workspace.id)["marketing_consent"] == 0
    again = import_events(
        engine, workspace=workspace, path=path, columns={}, rejects_path=None, now=NOW
    ).to_json()
    assert (again["imported"], again["duplicates"], again["contacts_created"]) == (0, 4, 0)
    zhang = get_contact(engine, workspace_id=workspace.id, phone="13800138000")
    purchase = next(e for e in zhang.recent_events if e.type == "purchase")
    assert (purchase.amount_fen, purchase.order_id, purchase.category) == (129_900, "A1", "数码")
    # 00:05 in Shanghai on the 11th is 16:05 UTC on the 10th.
    assert purchase.occurred_at == datetime(2026, 11, 10, 16, 5, tzinfo=UTC)
    with engine.connect() as conn:
        props = conn.execute(
            select(events.c.properties).where(events.c.type == "cart_add")
        ).scalar_one()
    assert props == {"渠道": "app"}


def test_events_without_their_columns_are_refused(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "x.csv", [["手机号", "金额"], ["13800138000", "1"]])
    with pytest.raises(InvalidInput, match="事件类型"):
        import_events(
            engine, workspace=workspace, path=path, columns={}, rejects_path=None, now=NOW
        )


def test_an_event_id_makes_the_key(engine: Engine, workspace: Workspace, tmp_path: Path) -> None:
    rows = [
        ["phone", "type", "time", "event_id"],
        ["13800138000", "app_open", "2026-11-01", "e1"],
        ["13800138000", "app_open", "2026-11-01", "e2"],
    ]
    report = import_events(
        engine,
        workspace=workspace,
        path=write_csv(tmp_path / "e.csv", rows),
        columns={},
        rejects_path=None,
        now=NOW,
    )
    assert report.imported == 2


def test_suppression_add_remove_and_check(engine: Engine, workspace: Workspace) -> None:
    args = {"workspace_id": workspace.id, "source": "cli", "reason": "投诉", "now": NOW}
    assert add_suppression(engine, phone="138 0013 8000", kind="blacklist", **args)
    assert not add_suppression(engine, phone="+8613800138000", kind="blacklist", **args)
    assert add_suppression(engine, phone="13800138000", kind="opt_out", **args)
    with pytest.raises(UnknownSuppressionKind):
        add_suppression(engine, phone="13800138000", kind="spam", **args)
    with engine.connect() as conn:
        kinds = suppression_kinds(
            conn, workspace_id=workspace.id, phones=["+8613800138000", "+8613900139000"]
        )
    assert kinds == {"+8613800138000": {"blacklist", "opt_out"}}
    remove_suppression(engine, workspace_id=workspace.id, phone="13800138000", kind="opt_out")
    with pytest.raises(NotFound):
        remove_suppression(engine, workspace_id=workspace.id, phone="13800138000", kind="opt_out")
    assert [s.kind for s in list_suppressions(engine, workspace_id=workspace.id)] == ["blacklist"]


def test_suppression_import(engine: Engine, workspace: Workspace, tmp_path: Path) -> None:
    rows = [["号码", "原因"], ["13800138000", "工信部免打扰"], ["bad", ""], ["13900139000", ""]]
    path = write_csv(tmp_path / "dnc.csv", rows)
    report = import_suppressions(
        engine,
        workspace=workspace,
        path=path,
        kind="dnc",
        source="carrier",
        columns={},
        rejects_path=None,
        now=NOW,
    )
    assert (report.imported, report.rejected) == (2, 1)
    again = import_suppressions(
        engine,
        workspace=workspace,
        path=path,
        kind="dnc",
        source="carrier",
        columns={},
        rejects_path=None,
        now=NOW,
    )
    assert (again.imported, again.unchanged) == (0, 2)
    [first, *_] = list_suppressions(engine, workspace_id=workspace.id, kind="dnc")
    assert first.source == "carrier"


def test_consent_grant_and_revoke(engine: Engine, workspace: Workspace) -> None:
    args = {"workspace_id": workspace.id, "phone": "13800138000", "purpose": "marketing"}
    assert grant_consent(engine, source="web_form", proof="f1", now=NOW, **args)
    assert not grant_consent(engine, source="web_form", proof="f1", now=NOW, **args)
    assert revoke_consent(engine, source="customer", now=NOW, **args)
    assert not revoke_consent(engine, source="customer", now=NOW, **args)
    with pytest.raises(InvalidInput, match="同意用途"):
        grant_consent(
            engine,
            workspace_id=workspace.id,
            phone="13800138000",
            purpose="ads",
            source="x",
            proof=None,
            now=NOW,
        )
    with pytest.raises(NotFound):
        revoke_consent(
            engine,
            workspace_id=workspace.id,
            phone="13900139000",
            purpose="marketing",
            source="x",
            now=NOW,
        )
    [record] = get_contact(engine, workspace_id=workspace.id, phone="13800138000").consents
    assert record.revoked_at == NOW and record.revoke_source == "customer"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0
