"""Fixtures for journey tests: a shop ready for journeys on both databases."""

from __future__ import annotations

import pytest
from journeys_support import open_shop
from sqlalchemy import Engine

from echelon.workspaces.service import Workspace


@pytest.fixture
def shop(engine: Engine, workspace: Workspace) -> Workspace:
    open_shop(engine, workspace)
    return workspace
