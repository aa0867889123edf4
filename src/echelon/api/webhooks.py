"""Webhooks: endpoints that receive receipts, replies, opt-outs, clicks and conversions,
signed with a secret shown once; a test event; the delivery log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from echelon.access.models import Principal
from echelon.analytics.webhooks import (
    add_webhook,
    enqueue_test,
    list_deliveries,
    list_webhooks,
    remove_webhook,
)
from echelon.api.auth import State, require
from echelon.api.encoding import plain
from echelon.api.params import MAX_ID, IdPath, audit

router = APIRouter(tags=["Webhook"])

Manager = Annotated[Principal, Depends(require("webhooks:manage"))]
Event = Literal["receipt", "reply", "opt_out", "click", "conversion"]


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    events: Annotated[list[Event], Field(max_length=5)] = Field(
        default_factory=list, description="不填：全部事件"
    )


@router.get("/webhooks", summary="Webhook 列表与投递统计")
def webhooks(principal: Manager, state: State) -> Any:
    return plain(list_webhooks(state.engine, workspace_id=principal.workspace_id))


@router.post("/webhooks", status_code=201, summary="新建 Webhook（签名密钥只显示这一次）")
def create(body: NewWebhook, principal: Manager, state: State) -> Any:
    webhook, secret = add_webhook(
        state.engine,
        workspace_id=principal.workspace_id,
        url=body.url,
        events=body.events,
        now=datetime.now(UTC),
    )
    audit(state, principal, "webhook.create", f"webhook:{webhook.id}", {"url": webhook.url})
    return plain(webhook) | {"secret": secret}


@router.delete("/webhooks/{webhook_id}", summary="删除 Webhook 及其投递记录")
def remove(webhook_id: IdPath, principal: Manager, state: State) -> Any:
    remove_webhook(state.engine, workspace_id=principal.workspace_id, webhook_id=webhook_id)
    audit(state, principal, "webhook.remove", f"webhook:{webhook_id}")
    return {"removed": True}


@router.post("/webhooks/{webhook_id}/test", summary="发送一个测试事件")
def test(webhook_id: IdPath, principal: Manager, state: State) -> Any:
    delivery = enqueue_test(
        state.engine,
        workspace_id=principal.workspace_id,
        webhook_id=webhook_id,
        now=datetime.now(UTC),
    )
    return {"delivery_id": delivery}


@router.get("/webhooks/deliveries", summary="投递记录（最新在前）")
def deliveries(
    principal: Manager,
    state: State,
    webhook_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> Any:
    return plain(
        list_deliveries(
            state.engine, workspace_id=principal.workspace_id, webhook_id=webhook_id, limit=limit
        )
    )
