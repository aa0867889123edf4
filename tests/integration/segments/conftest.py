"""Fixtures for segment tests: a shop whose members and orders are imported from
files, the way a shop brings them in."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from segments_support import SHOP_MEMBERS, SHOP_NOW, SHOP_ORDERS, write_csv
from sqlalchemy import Engine

from echelon.audience.importing import ContactImportOptions, import_contacts, import_events
from echelon.workspaces.service import Workspace


@pytest.fixture
def shop(engine: Engine, workspace: Workspace, tmp_path: Path) -> Workspace:
    import_contacts(
        engine,
        workspace=workspace,
        path=write_csv(tmp_path / "members.csv", SHOP_MEMBERS),
        options=ContactImportOptions(consent_source="checkout_checkbox"),
        now=SHOP_NOW - timedelta(days=30),
    )
    import_events(
        engine,
        workspace=workspace,
        path=write_csv(tmp_path / "orders.csv", SHOP_ORDERS),
        columns={},
        rejects_path=None,
        now=SHOP_NOW,
    )
    return workspace
