"""Fixtures of the API tests: a client over each database with an owner's session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import api_client, shop, sign_in, user
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from echelon.workspaces.service import Workspace


@pytest.fixture
def store(engine: Engine) -> Workspace:
    return shop(engine, "store")


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with api_client(engine) as client:
        yield client


@pytest.fixture
def owner(engine: Engine, store: Workspace, client: TestClient) -> dict[str, str]:
    """``client`` signed in as the store's owner; the CSRF header its writes send."""
    user(engine, store.id, "boss@example.com", "owner")
    return sign_in(client, "store", "boss@example.com")
