"""Typed values of access: roles and their permissions, the scopes an API key may
carry, and the principal every request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal


class Role(StrEnum):
    OWNER = "owner"
    MARKETER = "marketer"  # builds and sends
    REVIEWER = "reviewer"  # approves templates
    ANALYST = "analyst"  # reads reports
    DEVELOPER = "developer"  # API keys, webhooks, the integration

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: Final = {
    Role.OWNER: "所有者",
    Role.MARKETER: "运营",
    Role.REVIEWER: "审核员",
    Role.ANALYST: "分析师",
    Role.DEVELOPER: "开发者",
}

# Every permission a route can require. An API key's scopes are permissions too.
PERMISSIONS: Final = (
    "contacts:read",
    "contacts:write",
    "segments:read",
    "segments:write",
    "templates:read",
    "templates:write",
    "templates:approve",
    "campaigns:read",
    "campaigns:write",
    "messages:read",
    "messages:send",
    "reports:read",
    "webhooks:manage",
    "channels:admin",
    "keys:manage",
    "users:manage",
    "audit:read",
)

_READ_ALL = frozenset(
    {
        "contacts:read",
        "segments:read",
        "templates:read",
        "campaigns:read",
        "messages:read",
        "reports:read",
    }
)
ROLE_PERMISSIONS: Final[dict[Role, frozenset[str]]] = {
    Role.OWNER: frozenset(PERMISSIONS),
    Role.MARKETER: _READ_ALL
    | {"contacts:write", "segments:write", "templates:write", "campaigns:write", "messages:send"},
    Role.REVIEWER: frozenset({"templates:read", "templates:approve", "campaigns:read"}),
    Role.ANALYST: _READ_ALL - {"contacts:read"},
    Role.DEVELOPER: _READ_ALL
    | {"contacts:write", "messages:send", "webhooks:manage", "keys:manage"},
}

# What a key may carry: never approvals (a person approves), nor the power to mint keys,
# manage users or channels — those stay with people signed in to the console.
KEY_SCOPES: Final = frozenset(PERMISSIONS) - {
    "templates:approve",
    "keys:manage",
    "users:manage",
    "channels:admin",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as, and in which workspace — taken from its key or session,
    never from the URL."""

    workspace_id: int
    kind: Literal["user", "key"]
    id: int
    name: str  # the user's e-mail or the key's name
    permissions: frozenset[str]
    role: Role | None = None  # users only
    rate_per_minute: int | None = None  # keys only: NULL is the server default

    @property
    def actor(self) -> str:
        """How the audit log and template review name this principal."""
        return self.name if self.kind == "user" else f"key:{self.name}"

    def may(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    name: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never its secret, which is shown once when created."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    rate_per_minute: int | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    secret: str  # the whole key, shown once


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    target: str | None
    detail: dict[str, object]
    at: datetime
