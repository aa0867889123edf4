"""Access service: users and sign-in sessions, API keys, the principal a secret stands
for, the audit log, channel callback tokens and the reviewer's approval.

One transaction per public function; ``now`` is passed in. A secret (session token,
API key, callback token) is returned once, when made, and stored only as a digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from echelon.access import queries
from echelon.access.models import (
    KEY_SCOPES,
    ROLE_PERMISSIONS,
    ApiKey,
    AuditEntry,
    CreatedKey,
    Principal,
    Role,
    User,
)
from echelon.access.rules import (
    check_email,
    check_key_scopes,
    check_rate,
    hash_password,
    needs_rehash,
    new_token,
    token_digest,
    verify_password,
)
from echelon.content.review import TemplateChange, approve_template, template_history
from echelon.db.engine import reading
from echelon.dispatch.channel_admin import get_channel
from echelon.errors import EchelonError, InvalidInput, NotFound

# Checked against when the e-mail is unknown, so a miss costs what a wrong password does.
_DECOY_HASH = hash_password("decoy-password-never-used", salt=b"\0" * 16)
_AUTHORING = frozenset({"created", "edited", "submitted"})


class UserExists(EchelonError):
    code = "user_exists"
    http_status = 409

    def __init__(self, email: str) -> None:
        super().__init__(f"用户 {email} 已存在")


class SignInFailed(EchelonError):
    code = "sign_in_failed"
    http_status = 401

    def __init__(self) -> None:
        super().__init__("工作区、邮箱或密码不正确")


class KeyNotFound(NotFound):
    code = "key_not_found"

    def __init__(self, key_id: int) -> None:
        super().__init__(f"API 密钥 {key_id} 不存在或已撤销")


class Forbidden(EchelonError):
    code = "forbidden"
    http_status = 403


class SelfApproval(Forbidden):
    code = "self_approval"

    def __init__(self, name: str) -> None:
        super().__init__(f"模板「{name}」由您编写或提交，须由另一位审核员审核")


class WrongPassword(InvalidInput):
    code = "wrong_password"

    def __init__(self) -> None:
        super().__init__("当前密码不正确")


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = "、".join(f"{r.value}（{r.label}）" for r in Role)
        raise InvalidInput(f"角色 {role!r} 未知，可选：{choices}") from None


# -- users and sessions ---------------------------------------------------------------


def create_user(
    engine: Engine,
    *,
    workspace_id: int,
    email: str,
    name: str,
    role: str,
    password: str,
    now: datetime,
) -> User:
    """A console user of the workspace; e-mails are unique per workspace."""
    email, checked_role = check_email(email), check_role(role)
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("姓名须为 1–100 个字")
    digest = hash_password(password)
    try:
        with engine.begin() as conn:
            if queries.user_row(conn, workspace_id=workspace_id, email=email) is not None:
                raise UserExists(email)
            queries.insert_user(
                conn,
                {
                    "workspace_id": workspace_id,
                    "email": email,
                    "name": name,
                    "role": checked_role.value,
                    "password_hash": digest,
                    "created_at": now,
                },
            )
            row = queries.user_row(conn, workspace_id=workspace_id, email=email)
    except IntegrityError:
        raise UserExists(email) from None
    assert row is not None
    return _user(row)


def list_users(engine: Engine, *, workspace_id: int) -> list[User]:
    with engine.connect() as conn:
        return [_user(row) for row in queries.user_rows(conn, workspace_id=workspace_id)]


def sign_in(
    engine: Engine,
    *,
    workspace: str,
    email: str,
    password: str,
    now: datetime,
    lifetime: timedelta,
) -> tuple[Principal, str]:
    """A new session for the user whose password this is; ``SignInFailed`` otherwise,
    the same for an unknown workspace, e-mail or a wrong password."""
    with engine.connect() as conn:
        workspace_id = queries.workspace_id_of(conn, workspace.strip())
        row = None
        if workspace_id is not None:
            row = queries.user_row(conn, workspace_id=workspace_id, email=email.strip().lower())
    # The digest is checked (and remade) outside any transaction: argon2id takes a
    # good part of a second by design, and holds no lock meanwhile.
    stored = _DECOY_HASH if row is None else row.password_hash
    if not verify_password(password, stored) or row is None or row.disabled_at is not None:
        raise SignInFailed()
    # A digest of older parameters (or the scrypt of before argon2) is replaced now,
    # while the password is at hand.
    renewed = hash_password(password) if needs_rehash(row.password_hash) else None
    with engine.begin() as conn:
        if renewed is not None:
            queries.set_password_hash(
                conn,
                workspace_id=row.workspace_id,
                user_id=row.id,
                old_digest=row.password_hash,
                digest=renewed,
            )
        token = new_token("es")
        queries.delete_expired_sessions(conn, now=now)
        queries.insert_session(
            conn,
            {
                "workspace_id": row.workspace_id,
                "user_id": row.id,
                "token_hash": token_digest(token),
                "created_at": now,
                "expires_at": now + lifetime,
            },
        )
    return _user_principal(row), token


def sign_out(engine: Engine, *, token: str) -> None:
    with engine.begin() as conn:
        queries.delete_session(conn, token_hash=token_digest(token))


def change_password(
    engine: Engine,
    *,
    workspace_id: int,
    user_id: int,
    current: str,
    new: str,
    keep_session: str | None,
) -> int:
    """Replace a user's password once ``current`` proves it is theirs, and end every
    other session of the user (a stolen one included); the session ``keep_session``
    stays signed in. How many sessions were ended."""
    with engine.connect() as conn:
        row = queries.user_by_id(conn, workspace_id=workspace_id, user_id=user_id)
    if row is None or row.disabled_at is not None:
        raise NotFound(f"用户 {user_id} 不存在或已停用")
    # argon2id takes a good part of a second by design: outside any transaction.
    if not verify_password(current, row.password_hash):
        raise WrongPassword()
    if new == current:
        raise InvalidInput("新密码不能与当前密码相同")
    digest = hash_password(new)
    with engine.begin() as conn:
        replaced = queries.set_password_hash(
            conn,
            workspace_id=workspace_id,
            user_id=user_id,
            old_digest=row.password_hash,
            digest=digest,
        )
        if not replaced:  # changed meanwhile: ``current`` is no longer the password
            raise WrongPassword()
        keep = None if keep_session is None else token_digest(keep_session)
        return queries.delete_other_sessions(
            conn, workspace_id=workspace_id, user_id=user_id, keep_hash=keep
        )


def session_principal(engine: Engine, *, token: str, now: datetime) -> Principal | None:
    """Who the session token stands for; None for an unknown or expired session."""
    with engine.connect() as conn:
        row = queries.session_user(conn, token_hash=token_digest(token), now=now)
    return None if row is None else _user_principal(row)


def _user_principal(row: Row[Any]) -> Principal:
    role = Role(row.role)
    return Principal(
        workspace_id=row.workspace_id,
        kind="user",
        id=row.id,
        name=row.email,
        permissions=ROLE_PERMISSIONS[role],
        role=role,
    )


def _user(row: Row[Any]) -> User:
    return User(row.id, row.email, row.name, Role(row.role), row.created_at, row.disabled_at)


# -- API keys -------------------------------------------------------------------------


def create_key(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    scopes: Iterable[str],
    rate_per_minute: int | None,
    created_by: str,
    holder: frozenset[str] | None,
    now: datetime,
) -> CreatedKey:
    """A new key carrying ``scopes`` (each held by ``holder``, who creates it; None:
    the local command line). Its secret is in the result and nowhere else."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("密钥名称须为 1–100 个字，例如 shop-orders")
    checked = check_key_scopes(scopes, holder=holder)
    rate = check_rate(rate_per_minute)
    secret = new_token("ek")
    with engine.begin() as conn:
        key_id = queries.insert_key(
            conn,
            {
                "workspace_id": workspace_id,
                "name": name,
                "prefix": secret[:10],
                "secret_hash": token_digest(secret),
                "scopes": list(checked),
                "rate_per_minute": rate,
                "created_by": created_by,
                "created_at": now,
            },
        )
        audit_in(
            conn,
            workspace_id=workspace_id,
            actor=created_by,
            action="key.create",
            target=f"key:{key_id}",
            detail={"name": name, "scopes": list(checked), "rate_per_minute": rate},
            now=now,
        )
        (row,) = queries.key_rows(conn, workspace_id=workspace_id, key_id=key_id)
    return CreatedKey(_key(row), secret)


def list_keys(engine: Engine, *, workspace_id: int) -> list[ApiKey]:
    """Every key of the workspace, revoked ones included, newest first."""
    with engine.connect() as conn:
        return [_key(row) for row in queries.key_rows(conn, workspace_id=workspace_id)]


def revoke_key(
    engine: Engine, *, workspace_id: int, key_id: int, actor: str, now: datetime
) -> ApiKey:
    """The key stops working at once; ``KeyNotFound`` if it is not a live key here."""
    with engine.begin() as conn:
        if not queries.revoke_key(conn, workspace_id=workspace_id, key_id=key_id, now=now):
            raise KeyNotFound(key_id)
        audit_in(
            conn,
            workspace_id=workspace_id,
            actor=actor,
            action="key.revoke",
            target=f"key:{key_id}",
            detail={},
            now=now,
        )
        (row,) = queries.key_rows(conn, workspace_id=workspace_id, key_id=key_id)
    return _key(row)


def key_principal(engine: Engine, *, secret: str) -> Principal | None:
    """Who a presented API key stands for; None for an unknown or revoked key."""
    # Every API request asks: a read that never queues behind SQLite's writer.
    with reading(engine) as conn:
        row = queries.live_key(conn, secret_hash=token_digest(secret))
    if row is None:
        return None
    return Principal(
        workspace_id=row.workspace_id,
        kind="key",
        id=row.id,
        name=row.name,
        # A scope later withdrawn from keys stops working on the keys that had it.
        permissions=frozenset(row.scopes) & KEY_SCOPES,
        rate_per_minute=row.rate_per_minute,
    )


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes),
        rate_per_minute=row.rate_per_minute,
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


# -- audit log ------------------------------------------------------------------------


def record_audit(
    engine: Engine,
    *,
    workspace_id: int,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """One line of who did what to which, and when."""
    with engine.begin() as conn:
        audit_in(
            conn,
            workspace_id=workspace_id,
            actor=actor,
            action=action,
            target=target,
            detail=detail,
            now=now,
        )


def audit_in(
    conn: Connection,
    *,
    workspace_id: int,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """``record_audit`` inside the caller's transaction (a send, a key's creation)."""
    queries.insert_audit(
        conn,
        {
            "workspace_id": workspace_id,
            "actor": actor[:120],
            "action": action,
            "target": None if target is None else target[:200],
            "detail": detail,
            "at": now,
        },
    )


def list_audit(
    engine: Engine,
    *,
    workspace_id: int,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest entries first; pass the last id back as ``before_id`` for more."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("每页条数须在 1–1000 之间")
    with engine.connect() as conn:
        rows = queries.audit_rows(
            conn, workspace_id=workspace_id, action=action, before_id=before_id, limit=limit
        )
    return [AuditEntry(r.id, r.actor, r.action, r.target, r.detail, r.at) for r in rows]


# -- channel callbacks ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackToken:
    channel_id: int
    channel: str
    token: str  # shown once


def issue_callback_token(
    engine: Engine, *, workspace_id: int, channel: str, actor: str, now: datetime
) -> CallbackToken:
    """A new token for the provider of ``channel`` to call back with; the previous one
    stops working."""
    record = get_channel(engine, workspace_id=workspace_id, name=channel)
    token = new_token("ec")
    with engine.begin() as conn:
        queries.replace_callback_token(
            conn,
            workspace_id=workspace_id,
            channel_id=record.id,
            token_hash=token_digest(token),
            now=now,
        )
        audit_in(
            conn,
            workspace_id=workspace_id,
            actor=actor,
            action="channel.callback_token",
            target=f"channel:{record.name}",
            detail={},
            now=now,
        )
    return CallbackToken(record.id, record.name, token)


def callback_channel(engine: Engine, *, channel_id: int, token: str) -> int | None:
    """The workspace of ``channel_id`` if ``token`` is its callback token, else None."""
    with engine.connect() as conn:
        row = queries.callback_channel(conn, token_hash=token_digest(token))
    if row is None or row.channel_id != channel_id:
        return None
    return int(row.workspace_id)


# -- review ---------------------------------------------------------------------------


def approve_template_as(
    engine: Engine, *, principal: Principal, name: str, note: str | None, now: datetime
) -> TemplateChange:
    """Approve as ``principal``: who may approve, and never somebody who wrote or
    submitted the text (an author cannot approve their own template)."""
    if not principal.may("templates:approve") or principal.kind != "user":
        raise Forbidden("只有审核员或所有者可以审核通过模板")
    history = template_history(engine, workspace_id=principal.workspace_id, name=name)
    if any(r.action in _AUTHORING and r.actor == principal.actor for r in history):
        raise SelfApproval(name.strip())
    return approve_template(
        engine,
        workspace_id=principal.workspace_id,
        name=name,
        actor=principal.actor,
        note=note,
        now=now,
    )
