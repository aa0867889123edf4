"""SQL of the access package; every statement is scoped to one workspace, except the
lookups by a secret's digest, which find the workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, select, update

from echelon.db.access import (
    api_keys,
    audit_log,
    callback_tokens,
    idempotency_keys,
    user_sessions,
    users,
)
from echelon.db.tables import workspaces


def workspace_id_of(conn: Connection, slug: str) -> int | None:
    found = conn.execute(select(workspaces.c.id).where(workspaces.c.slug == slug)).scalar()
    return None if found is None else int(found)


def user_row(conn: Connection, *, workspace_id: int, email: str) -> Row[Any] | None:
    return conn.execute(
        select(users).where(users.c.workspace_id == workspace_id, users.c.email == email)
    ).one_or_none()


def user_rows(conn: Connection, *, workspace_id: int) -> list[Row[Any]]:
    return list(
        conn.execute(select(users).where(users.c.workspace_id == workspace_id).order_by(users.c.id))
    )


def insert_user(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(insert(users).values(values).returning(users.c.id)).scalar_one())


def user_by_id(conn: Connection, *, workspace_id: int, user_id: int) -> Row[Any] | None:
    return conn.execute(
        select(users).where(users.c.workspace_id == workspace_id, users.c.id == user_id)
    ).one_or_none()


def set_password_hash(
    conn: Connection, *, workspace_id: int, user_id: int, old_digest: str, digest: str
) -> int:
    """Replace the digest, unless it changed since ``old_digest`` was read; 1 if replaced."""
    return conn.execute(
        update(users)
        .where(
            users.c.workspace_id == workspace_id,
            users.c.id == user_id,
            users.c.password_hash == old_digest,
        )
        .values(password_hash=digest)
    ).rowcount


def insert_session(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(user_sessions).values(values))


def session_user(conn: Connection, *, token_hash: str, now: datetime) -> Row[Any] | None:
    """The live session's user, unless the user is disabled."""
    return conn.execute(
        select(users)
        .join_from(user_sessions, users, users.c.id == user_sessions.c.user_id)
        .where(
            user_sessions.c.token_hash == token_hash,
            user_sessions.c.expires_at > now,
            users.c.disabled_at.is_(None),
        )
    ).one_or_none()


def delete_session(conn: Connection, *, token_hash: str) -> None:
    conn.execute(delete(user_sessions).where(user_sessions.c.token_hash == token_hash))


def delete_other_sessions(
    conn: Connection, *, workspace_id: int, user_id: int, keep_hash: str | None
) -> int:
    """End every session of the user but the one of ``keep_hash``; how many."""
    query = delete(user_sessions).where(
        user_sessions.c.workspace_id == workspace_id, user_sessions.c.user_id == user_id
    )
    if keep_hash is not None:
        query = query.where(user_sessions.c.token_hash != keep_hash)
    return conn.execute(query).rowcount


def delete_expired_sessions(conn: Connection, *, now: datetime) -> int:
    return conn.execute(delete(user_sessions).where(user_sessions.c.expires_at <= now)).rowcount


def insert_key(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(insert(api_keys).values(values).returning(api_keys.c.id)).scalar_one())


def key_rows(conn: Connection, *, workspace_id: int, key_id: int | None = None) -> list[Row[Any]]:
    query = (
        select(api_keys)
        .where(api_keys.c.workspace_id == workspace_id)
        .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
    )
    if key_id is not None:
        query = query.where(api_keys.c.id == key_id)
    return list(conn.execute(query))


# Built once: every API request runs it, and building a statement costs more than
# SQLite takes to answer it.
_LIVE_KEY = select(api_keys).where(
    api_keys.c.secret_hash == bindparam("secret_hash"), api_keys.c.revoked_at.is_(None)
)


def live_key(conn: Connection, *, secret_hash: str) -> Row[Any] | None:
    return conn.execute(_LIVE_KEY, {"secret_hash": secret_hash}).one_or_none()


def revoke_key(conn: Connection, *, workspace_id: int, key_id: int, now: datetime) -> int:
    return conn.execute(
        update(api_keys)
        .where(
            api_keys.c.workspace_id == workspace_id,
            api_keys.c.id == key_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    ).rowcount


_INSERT_AUDIT = insert(audit_log)


def insert_audit(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(_INSERT_AUDIT, values)


def audit_rows(
    conn: Connection, *, workspace_id: int, action: str | None, before_id: int | None, limit: int
) -> list[Row[Any]]:
    query = (
        select(audit_log)
        .where(audit_log.c.workspace_id == workspace_id)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return list(conn.execute(query))


_ANSWER = select(idempotency_keys).where(
    idempotency_keys.c.workspace_id == bindparam("workspace_id"),
    idempotency_keys.c.key == bindparam("key"),
)


def idempotent_answer(conn: Connection, *, workspace_id: int, key: str) -> Row[Any] | None:
    return conn.execute(_ANSWER, {"workspace_id": workspace_id, "key": key}).one_or_none()


def delete_idempotent_answer(conn: Connection, *, answer_id: int) -> None:
    conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == answer_id))


_INSERT_ANSWER = insert(idempotency_keys)


def insert_idempotent_answer(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(_INSERT_ANSWER, values)


def delete_expired_answers(conn: Connection, *, now: datetime) -> int:
    return conn.execute(
        delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now)
    ).rowcount


def replace_callback_token(
    conn: Connection, *, workspace_id: int, channel_id: int, token_hash: str, now: datetime
) -> None:
    conn.execute(delete(callback_tokens).where(callback_tokens.c.channel_id == channel_id))
    conn.execute(
        insert(callback_tokens).values(
            workspace_id=workspace_id, channel_id=channel_id, token_hash=token_hash, created_at=now
        )
    )


def callback_channel(conn: Connection, *, token_hash: str) -> Row[Any] | None:
    return conn.execute(
        select(callback_tokens).where(callback_tokens.c.token_hash == token_hash)
    ).one_or_none()
