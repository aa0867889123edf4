"""SQL for templates, their review history and workspace words; every query is
scoped to a workspace and runs inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from echelon.db.journeys import journey_versions, journeys
from echelon.db.outbox import campaigns
from echelon.db.tables import contact_tags, contacts, template_reviews, templates, workspace_words


def template_row(
    conn: Connection, *, workspace_id: int, name: str, lock: bool = False
) -> Row[Any] | None:
    """The template ``name`` of the workspace; ``lock`` holds it until commit
    (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)."""
    query = select(templates).where(
        templates.c.workspace_id == workspace_id, templates.c.name == name
    )
    if lock:
        query = query.with_for_update()
    return conn.execute(query).one_or_none()


def template_rows(
    conn: Connection, *, workspace_id: int, status: str | None, limit: int | None
) -> list[Row[Any]]:
    """The workspace's templates, most recently changed first."""
    query = (
        select(templates)
        .where(templates.c.workspace_id == workspace_id)
        .order_by(templates.c.updated_at.desc(), templates.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(templates.c.review_status == status)
    return list(conn.execute(query))


def insert_template(conn: Connection, values: dict[str, Any]) -> int:
    inserted = conn.execute(insert(templates).values(values).returning(templates.c.id))
    return int(inserted.scalar_one())


def update_template(
    conn: Connection, *, workspace_id: int, template_id: int, values: dict[str, Any]
) -> None:
    conn.execute(
        update(templates)
        .where(templates.c.workspace_id == workspace_id, templates.c.id == template_id)
        .values(values)
    )


def record_review(
    conn: Connection,
    *,
    workspace_id: int,
    template_id: int,
    action: str,
    actor: str,
    note: str | None,
    kind: str,
    body: str,
    signature: str | None,
    at: datetime,
) -> None:
    """Append one entry to the template's review history (never updated or deleted)."""
    conn.execute(
        insert(template_reviews).values(
            workspace_id=workspace_id,
            template_id=template_id,
            action=action,
            actor=actor,
            note=note,
            kind=kind,
            body=body,
            signature=signature,
            at=at,
        )
    )


def delete_template(conn: Connection, *, workspace_id: int, template_id: int) -> None:
    """The template and (cascading) its review history."""
    conn.execute(
        delete(templates).where(
            templates.c.workspace_id == workspace_id, templates.c.id == template_id
        )
    )


def template_users(
    conn: Connection, *, workspace_id: int, template_id: int, name: str
) -> tuple[list[str], list[str]]:
    """The campaigns (its template, or an A/B variant's) and the journeys (a ``send``
    step in any of their versions) of the workspace that send the template."""
    using_campaigns = [
        row.name
        for row in conn.execute(
            select(campaigns.c.name, campaigns.c.template_id, campaigns.c.experiment)
            .where(campaigns.c.workspace_id == workspace_id)
            .order_by(campaigns.c.name)
        )
        if row.template_id == template_id
        or any(v.get("template") == name for v in (row.experiment or {}).get("variants", ()))
    ]
    using_journeys = sorted(
        {
            row.name
            for row in conn.execute(
                select(journeys.c.name, journey_versions.c.definition).where(
                    journeys.c.workspace_id == workspace_id,
                    journey_versions.c.journey_id == journeys.c.id,
                )
            )
            if any(step.get("template") == name for step in row.definition.get("steps", ()))
        }
    )
    return using_campaigns, using_journeys


def review_rows(conn: Connection, *, workspace_id: int, template_id: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(
                template_reviews.c.action,
                template_reviews.c.actor,
                template_reviews.c.note,
                template_reviews.c.kind,
                template_reviews.c.body,
                template_reviews.c.signature,
                template_reviews.c.at,
            )
            .where(
                template_reviews.c.workspace_id == workspace_id,
                template_reviews.c.template_id == template_id,
            )
            .order_by(template_reviews.c.at, template_reviews.c.id)
        )
    )


def word_rows(conn: Connection, *, workspace_id: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(
                workspace_words.c.id,
                workspace_words.c.word,
                workspace_words.c.category,
                workspace_words.c.severity,
                workspace_words.c.suggestion,
                workspace_words.c.created_at,
            )
            .where(workspace_words.c.workspace_id == workspace_id)
            .order_by(workspace_words.c.id)
        )
    )


def contact_with_tags(conn: Connection, *, workspace_id: int, phone: str) -> dict[str, Any] | None:
    """The contact's columns plus ``tags`` (sorted), as ``preview.contact_variables`` reads."""
    row = conn.execute(
        select(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.phone == phone)
    ).one_or_none()
    if row is None:
        return None
    tags = conn.execute(
        select(contact_tags.c.tag)
        .where(contact_tags.c.workspace_id == workspace_id, contact_tags.c.contact_id == row.id)
        .order_by(contact_tags.c.tag)
    ).scalars()
    return {**row._mapping, "tags": list(tags)}
