"""What the console tests share: the staff of a shop (one user per role) and signing in
as one of them."""

from __future__ import annotations

import re
from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from echelon.access.service import create_user
from echelon.access.settings import AccessSettings

PASSWORD = "correct horse battery"
# Generous: tests that are not about rate limits never meet one.
ACCESS = AccessSettings(rate_per_minute=1_000_000, burst=1_000_000)
STAFF = (
    ("boss@example.com", "owner"),
    ("rui@example.com", "reviewer"),
    ("mei@example.com", "marketer"),
    ("ann@example.com", "analyst"),
)


def add_staff(engine: Engine, workspace_id: int, now: datetime) -> None:
    """One user of each role in ``STAFF``, all with ``PASSWORD``."""
    for email, role in STAFF:
        create_user(
            engine,
            workspace_id=workspace_id,
            email=email,
            name=email.split("@")[0],
            role=role,
            password=PASSWORD,
            now=now,
        )


def sign_in(client: TestClient, email: str, workspace: str = "store") -> str:
    """Sign ``client`` in as ``email``; the session's CSRF token."""
    answer = client.post(
        "/login",
        data={"workspace": workspace, "email": email, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/settings").text)
    assert found is not None
    return found.group(1)
