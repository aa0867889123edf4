"""Fixtures for content tests: a signed workspace, contacts imported the way users do."""

from __future__ import annotations

from pathlib import Path

import pytest
from content_support import NOW, write_contacts
from sqlalchemy import Engine

from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.workspaces.service import Workspace, update_settings


@pytest.fixture
def signed(engine: Engine, workspace: Workspace) -> Workspace:
    """The workspace with its default signature set."""
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    return workspace


@pytest.fixture
def shoppers(engine: Engine, signed: Workspace, tmp_path: Path) -> Workspace:
    """The signed workspace with 张三 (every field filled) and a contact with none."""
    import_contacts(
        engine,
        workspace=signed,
        path=write_contacts(tmp_path / "shoppers.csv"),
        options=ContactImportOptions(),
        now=NOW,
    )
    return signed
