"""Consent per contact and purpose: a history of grants and revocations.

Marketing consent is never assumed. A grant records when, how (``source``) and the
proof; a revocation closes the live grant at once and is kept as history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, update

from echelon.audience.phone import normalise_phone
from echelon.audience.queries import ensure_contact
from echelon.db.tables import consents, contacts
from echelon.errors import InvalidInput, NotFound

PURPOSES = {"marketing": "营销", "service": "通知"}
_SOURCE_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    purpose: str
    granted_at: datetime
    source: str
    proof: str | None
    revoked_at: datetime | None
    revoke_source: str | None


def _check(purpose: str, source: str) -> None:
    if purpose not in PURPOSES:
        raise InvalidInput(f"同意用途 {purpose!r} 未知，可用：marketing（营销）、service（通知）")
    if not source.strip() or len(source) > _SOURCE_LENGTH:
        raise InvalidInput("请写明同意来源（--source），如 checkout_checkbox、web_form、store")


def grant_consent(
    engine: Engine,
    *,
    workspace_id: int,
    phone: str,
    purpose: str,
    source: str,
    proof: str | None,
    now: datetime,
) -> bool:
    """Record a grant; False if a live grant exists already. Creates the contact if new."""
    _check(purpose, source)
    number = normalise_phone(phone)
    with engine.begin() as conn:
        contact_id = ensure_contact(conn, workspace_id=workspace_id, phone=number, now=now)
        if _live(conn, contact_id, purpose) is not None:
            return False
        conn.execute(
            insert(consents).values(
                workspace_id=workspace_id,
                contact_id=contact_id,
                purpose=purpose,
                granted_at=now,
                source=source,
                proof=proof,
            )
        )
    return True


def revoke_consent(
    engine: Engine, *, workspace_id: int, phone: str, purpose: str, source: str, now: datetime
) -> bool:
    """Close the live grant at once; False if there was none to close."""
    _check(purpose, source)
    number = normalise_phone(phone)
    with engine.begin() as conn:
        contact_id = conn.execute(
            select(contacts.c.id).where(
                contacts.c.workspace_id == workspace_id, contacts.c.phone == number
            )
        ).scalar_one_or_none()
        if contact_id is None:
            raise NotFound(f"联系人 {number} 不存在")
        return revoke_in(conn, contact_id=contact_id, purpose=purpose, source=source, now=now)


def revoke_in(
    conn: Connection, *, contact_id: int, purpose: str, source: str, now: datetime
) -> bool:
    """Revoke inside the caller's transaction (an opt-out reply does this)."""
    live = _live(conn, contact_id, purpose)
    if live is None:
        return False
    conn.execute(
        update(consents).where(consents.c.id == live).values(revoked_at=now, revoke_source=source)
    )
    return True


def consent_history(conn: Connection, contact_id: int) -> list[ConsentRecord]:
    rows = conn.execute(
        select(
            consents.c.purpose,
            consents.c.granted_at,
            consents.c.source,
            consents.c.proof,
            consents.c.revoked_at,
            consents.c.revoke_source,
        )
        .where(consents.c.contact_id == contact_id)
        .order_by(consents.c.granted_at, consents.c.id)
    )
    return [ConsentRecord(*row) for row in rows]


def _live(conn: Connection, contact_id: int, purpose: str) -> int | None:
    found = conn.execute(
        select(consents.c.id).where(
            consents.c.contact_id == contact_id,
            consents.c.purpose == purpose,
            consents.c.revoked_at.is_(None),
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)
