"""Tables of the access package: console users and their sessions, API keys, the audit
log, the send API's idempotency keys and the tokens providers call back with.

No secret is stored as given: passwords as argon2id digests, session tokens, API keys
and callback tokens as SHA-256 digests of high-entropy random strings.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from echelon.db.tables import metadata, workspace_fk
from echelon.db.types import Id, Json, UTCDateTime

ROLES = ("owner", "marketer", "reviewer", "analyst", "developer")

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("email", String(200), nullable=False),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime()),
    UniqueConstraint("workspace_id", "email"),
    CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")", name="role"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index(None, "user_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("name", String(100), nullable=False),
    # The key's first characters, shown in listings so people can tell keys apart.
    Column("prefix", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("scopes", Json, nullable=False),
    # Requests per minute; NULL: the server's default.
    Column("rate_per_minute", Integer),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Index(None, "workspace_id", "created_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("actor", String(120), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(200)),
    Column("detail", Json, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index(None, "workspace_id", "at"),
)

# The answer of each POST /api/v1/messages made with an Idempotency-Key, kept 24 h: the
# same key with the same request gets the same answer, with another request a 409.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("key", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("response", Json, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "key"),
    Index(None, "expires_at"),
)

# What an HTTP provider presents when it posts receipts and replies for a channel.
callback_tokens = Table(
    "callback_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    workspace_fk(),
    Column("channel_id", Id, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("channel_id"),
)

__all__ = [
    "api_keys",
    "audit_log",
    "callback_tokens",
    "idempotency_keys",
    "metadata",
    "user_sessions",
    "users",
]
