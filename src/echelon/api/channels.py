"""Channels (owners only): add, edit, enable, disable, show, list — passwords always
masked — and the token an HTTP provider calls back with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from echelon.access.models import Principal
from echelon.access.service import issue_callback_token
from echelon.api.auth import State, require
from echelon.api.encoding import plain_object
from echelon.api.params import NamePath, audit
from echelon.dispatch.channel_admin import (
    ChannelRecord,
    add_channel,
    disable_channel,
    edit_channel,
    enable_channel,
    get_channel,
    list_channels,
    smpp_config,
)

router = APIRouter(tags=["通道"])

Admin = Annotated[Principal, Depends(require("channels:admin"))]
Carrier = Literal["all", "china_mobile", "china_unicom", "china_telecom", "china_broadnet"]
Short = Annotated[str, StringConstraints(max_length=100)]


class SmppFields(BaseModel):
    """The SMPP account; other ``SmppConfig`` fields (``tps``, ``window`` …) may be given too."""

    model_config = ConfigDict(extra="allow")

    host: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    port: Annotated[int, Field(ge=1, le=65535)]
    system_id: Annotated[str, StringConstraints(max_length=15)]
    password: Annotated[str, StringConstraints(max_length=8)]


class NewChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    config: SmppFields
    carriers: Annotated[list[Carrier], Field(min_length=1, max_length=5)] = ["all"]
    weight: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0
    binds: Annotated[int, Field(ge=1, le=64)] = 1


class ChannelEdit(BaseModel):
    """Fields to change; ``config`` holds ``SmppConfig`` fields (host, password …)."""

    model_config = ConfigDict(extra="forbid")

    config: (
        Annotated[dict[Annotated[str, StringConstraints(max_length=64)], Any], Field(max_length=40)]
        | None
    ) = None
    carriers: Annotated[list[Carrier], Field(min_length=1, max_length=5)] | None = None
    weight: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] | None = None
    binds: Annotated[int, Field(ge=1, le=64)] | None = None


def channel_json(record: ChannelRecord) -> dict[str, Any]:
    return plain_object(record.to_json()) | {"id": record.id}


@router.get("/channels", summary="通道列表（密码已隐藏）")
def channels(principal: Admin, state: State) -> Any:
    return [
        channel_json(c) for c in list_channels(state.engine, workspace_id=principal.workspace_id)
    ]


@router.post("/channels", status_code=201, summary="添加 SMPP 通道")
def create(body: NewChannel, principal: Admin, state: State) -> Any:
    record = add_channel(
        state.engine,
        workspace_id=principal.workspace_id,
        name=body.name,
        config=smpp_config(body.config.model_dump() | {"name": body.name}),
        carriers=list(body.carriers),
        weight=body.weight,
        priority=body.priority,
        binds=body.binds,
        now=datetime.now(UTC),
    )
    audit(state, principal, "channel.create", f"channel:{record.name}", {"kind": record.kind})
    return channel_json(record)


@router.get("/channels/{name}", summary="通道详情（密码已隐藏）")
def show(name: NamePath, principal: Admin, state: State) -> Any:
    return channel_json(get_channel(state.engine, workspace_id=principal.workspace_id, name=name))


@router.patch("/channels/{name}", summary="修改通道")
def edit(name: NamePath, body: ChannelEdit, principal: Admin, state: State) -> Any:
    changes: dict[str, Any] = dict(body.config or {})
    changes.update(body.model_dump(exclude={"config"}, exclude_none=True))
    return channel_json(
        edit_channel(
            state.engine,
            workspace_id=principal.workspace_id,
            name=name,
            now=datetime.now(UTC),
            **changes,
        )
    )


@router.post("/channels/{name}/enable", summary="启用通道")
def enable(name: NamePath, principal: Admin, state: State) -> Any:
    return channel_json(
        enable_channel(
            state.engine, workspace_id=principal.workspace_id, name=name, now=datetime.now(UTC)
        )
    )


@router.post("/channels/{name}/disable", summary="停用通道（保留配置）")
def disable(name: NamePath, principal: Admin, state: State) -> Any:
    return channel_json(
        disable_channel(
            state.engine, workspace_id=principal.workspace_id, name=name, now=datetime.now(UTC)
        )
    )


@router.post(
    "/channels/{name}/callback-token",
    status_code=201,
    summary="生成回调令牌：服务商推送回执与上行时携带（只显示这一次，旧令牌作废）",
)
def callback_token(name: NamePath, principal: Admin, state: State) -> Any:
    issued = issue_callback_token(
        state.engine,
        workspace_id=principal.workspace_id,
        channel=name,
        actor=principal.actor,
        now=datetime.now(UTC),
    )
    return {
        "channel": issued.channel,
        "token": issued.token,
        "receipts_url": f"/api/v1/callbacks/{issued.channel_id}/receipts",
        "replies_url": f"/api/v1/callbacks/{issued.channel_id}/replies",
    }
