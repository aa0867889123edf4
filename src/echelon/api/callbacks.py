"""Provider callbacks: delivery receipts and replies posted by an HTTP channel, each
channel authenticated by its own token (``X-Callback-Token``). Receipts are idempotent:
a provider may post one twice, or before the submit response; both are fine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from echelon.access.service import callback_channel
from echelon.api.auth import State
from echelon.api.encoding import plain
from echelon.api.errors import ApiError
from echelon.api.params import AwareTime, IdPath
from echelon.channels.base import InboundReply, Receipt
from echelon.dispatch.inbound import record_receipts, record_reply

router = APIRouter(tags=["服务商回调"])

callback_header = APIKeyHeader(
    name="X-Callback-Token",
    auto_error=False,
    scheme_name="CallbackToken",
    description="通道的回调令牌（POST /api/v1/channels/{name}/callback-token 生成）",
)
Token = Annotated[str | None, Security(callback_header)]
Address = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    status: Literal["delivered", "undelivered", "expired", "rejected", "unknown"]
    error_code: Annotated[str, StringConstraints(max_length=64)] | None = None
    done_at: AwareTime | None = None
    destination: Annotated[str, StringConstraints(max_length=32)] = ""


class ReceiptBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipts: Annotated[list[ReceiptIn], Field(min_length=1, max_length=1000)]


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Address = Field(description="回复人的手机号")
    destination: Annotated[str, StringConstraints(max_length=32)] = Field(
        "", description="被回复的号码（含扩展码）"
    )
    extension: Annotated[str, StringConstraints(max_length=20)] = ""
    text: Annotated[str, StringConstraints(max_length=2000)]
    received_at: AwareTime | None = None


def _workspace(state: Any, channel_id: int, token: str | None) -> int:
    workspace_id = None
    if token is not None:
        workspace_id = callback_channel(state.engine, channel_id=channel_id, token=token)
    if workspace_id is None:
        raise ApiError(401, "invalid_callback_token", "回调令牌无效，或不属于这个通道")
    return workspace_id


@router.post("/callbacks/{channel_id}/receipts", summary="服务商推送状态报告（回执）")
def receipts(channel_id: IdPath, body: ReceiptBatch, token: Token, state: State) -> Any:
    _workspace(state, channel_id, token)
    received = [
        Receipt(
            provider_id=r.provider_id,
            status=r.status,
            error_code=r.error_code,
            done_at=r.done_at,
            submitted_at=None,
            raw=json.dumps(r.model_dump(mode="json"), ensure_ascii=False),
            destination=r.destination,
        )
        for r in body.receipts
    ]
    new = record_receipts(
        state.engine, channel_id=channel_id, received=received, now=datetime.now(UTC)
    )
    return {"received": len(received), "new": new}


@router.post("/callbacks/{channel_id}/replies", summary="服务商推送上行短信（回复）")
def replies(channel_id: IdPath, body: ReplyIn, token: Token, state: State) -> Any:
    workspace_id = _workspace(state, channel_id, token)
    now = datetime.now(UTC)
    outcome = record_reply(
        state.engine,
        workspace_id=workspace_id,
        channel_id=channel_id,
        reply=InboundReply(
            source=body.source,
            destination=body.destination,
            extension=body.extension,
            text=body.text,
            received_at=body.received_at or now,
        ),
        now=now,
    )
    # An opt-out is audited by record_reply, in the transaction that suppresses.
    return plain(outcome)
