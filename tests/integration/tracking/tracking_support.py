"""A shop with a campaign, planned the way the planner will call tracking.

``plan_with_tracking`` is the reference for the planner: per page, each recipient's
variables get ``CampaignTracking.variables``; after the page's outbox rows are
written, ``CampaignTracking.write`` stores its links and coupons tied to them.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from echelon.audience.importing import ContactImportOptions, import_contacts
from echelon.campaigns.service import create_campaign
from echelon.content.length import count_parts
from echelon.content.preview import contact_variables
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import approved_template_in, create_template
from echelon.db.bulk import copy_rows
from echelon.db.outbox import campaigns, messages
from echelon.db.tables import contacts
from echelon.tracking.links import CampaignTracking
from echelon.tracking.settings import settings_in
from echelon.workspaces.service import Workspace, update_settings

NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # noon in Shanghai
BODY = (
    "{{ name | default('会员') }}您好，双11会员券{{ coupon }}，"
    "点击{{ link('https://shop.example/sale?id=11') }}"
)
OUTBOX_COLUMNS = (
    *("workspace_id", "contact_id", "phone", "campaign_id", "kind", "text", "text_hash"),
    *("parts", "cost_e4", "status", "block_reason", "due_at", "expires_at"),
    *("created_at", "updated_at"),
)
CONTACTS = [
    ["手机号", "姓名", "营销同意"],
    ["13800138000", "张三", "是"],
    ["13900139000", "李四", "是"],
    ["13700137000", "王五", "是"],
    ["13600136000", "赵六", "是"],
]


def open_shop(engine: Engine, workspace: Workspace, tmp_path: Path, body: str = BODY) -> None:
    path = tmp_path / "members.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(CONTACTS)
    import_contacts(
        engine,
        workspace=workspace,
        path=path,
        options=ContactImportOptions(consent_source="checkout_checkbox"),
        now=NOW,
    )
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    create_template(
        engine,
        workspace_id=workspace.id,
        name="d11",
        kind="marketing",
        body=body,
        signature=None,
        actor="运营",
        now=NOW,
    )
    submit_template(engine, workspace_id=workspace.id, name="d11", actor="运营", now=NOW)
    approve_template(engine, workspace_id=workspace.id, name="d11", actor="审核", now=NOW)


def add_campaign(engine: Engine, workspace: Workspace, name: str = "双11") -> int:
    return create_campaign(
        engine,
        workspace_id=workspace.id,
        name=name,
        template="d11",
        audience={"kind": "all"},
        send_at=None,
        ends_at=None,
        throttle_per_second=None,
        budget_yuan=None,
        now=NOW,
    ).id


def plan_with_tracking(
    engine: Engine,
    workspace: Workspace,
    campaign_id: int,
    *,
    write: bool = True,
    page: int = 2,
    shared: bool = False,
    random_bytes: Callable[[int], bytes] | None = None,
) -> list[str]:
    """Plan every contact of the workspace into the campaign's outbox, ``page`` at a
    time, with tracked links and coupons; the texts. ``shared``: render with
    placeholders (as a planner caching texts would) and personalise each one."""
    texts: list[str] = []
    with engine.begin() as conn:
        template = approved_template_in(conn, workspace_id=workspace.id, name="d11")
        tracking = CampaignTracking.open(
            conn,
            workspace_id=workspace.id,
            campaign_id=campaign_id,
            uses=template.compiled.variables,
            write=write,
            now=NOW,
        )
        if random_bytes is not None:
            tracking = CampaignTracking(
                workspace_id=workspace.id,
                campaign_id=campaign_id,
                settings=settings_in(conn, workspace_id=workspace.id),
                uses=template.compiled.variables,
                write=write,
                now=NOW,
                random_bytes=random_bytes,
            )
        after = 0
        while recipients := [
            dict(row._mapping, tags=[])
            for row in conn.execute(
                select(contacts)
                .where(contacts.c.workspace_id == workspace.id, contacts.c.id > after)
                .order_by(contacts.c.id)
                .limit(page)
            )
        ]:
            after = recipients[-1]["id"]
            rows: list[tuple[Any, ...]] = []
            for contact in recipients:
                if shared:
                    variables = contact_variables(contact) | tracking.placeholders()
                    rendered = template.compose(variables, contact=contact["phone"])
                    text = tracking.personalise(rendered, contact["id"])
                    assert len(text) == len(rendered)
                else:
                    variables = contact_variables(contact) | tracking.variables(contact["id"])
                    text = template.compose(variables, contact=contact["phone"])
                texts.append(text)
                rows.append(
                    (
                        workspace.id,
                        contact["id"],
                        contact["phone"],
                        campaign_id,
                        template.kind,
                        text,
                        hashlib.blake2b(text.encode(), digest_size=16).hexdigest(),
                        count_parts(text).parts,
                        600,
                        "queued",
                        None,
                        NOW,
                        None,
                        NOW,
                        NOW,
                    )
                )
            if write:
                copy_rows(conn, messages, OUTBOX_COLUMNS, rows)
                tracking.write(conn)
        conn.execute(
            update(campaigns).where(campaigns.c.id == campaign_id).values(status="running")
        )
    return texts


def deliver(engine: Engine, message_id: int, *, at: datetime, status: str = "delivered") -> None:
    """What the dispatcher and a receipt do to a message."""
    with engine.begin() as conn:
        conn.execute(
            update(messages)
            .where(messages.c.id == message_id)
            .values(status=status, submitted_at=at, done_at=at, updated_at=at)
        )


def message_of(engine: Engine, phone: str, campaign_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(messages).where(messages.c.phone == phone, messages.c.campaign_id == campaign_id)
        ).one()
    return dict(row._mapping)
