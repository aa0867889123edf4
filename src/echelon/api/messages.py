"""Messages: send one service or verification message now, and read the message log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from echelon.access.models import Principal
from echelon.access.sending import send_message
from echelon.api.auth import State, require
from echelon.api.encoding import plain, yuan_e4
from echelon.api.params import AwareTime, BeforeId, IdPath, Limit, Phone
from echelon.db.outbox import MESSAGE_STATUSES
from echelon.dispatch.log import LoggedMessage, get_message, message_page

router = APIRouter(tags=["短信"])

Sender = Annotated[Principal, Depends(require("messages:send"))]
Reader = Annotated[Principal, Depends(require("messages:read"))]
Status = Literal[MESSAGE_STATUSES]  # type: ignore[valid-type]


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    body: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="正文；签名自动添加"
    )
    kind: Literal["service", "verification"] = "service"


@router.post(
    "/messages",
    status_code=202,
    summary="立即发送一条通知或验证码短信（经合规闸门；支持 Idempotency-Key，24 小时内有效）",
)
def send(
    body: SendRequest,
    principal: Sender,
    state: State,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="同一个键 24 小时内重复提交只发送一次，返回第一次的结果",
        ),
    ] = None,
) -> JSONResponse:
    answer = send_message(
        state.engine,
        principal=principal,
        phone=body.phone,
        body=body.body,
        kind=body.kind,
        idempotency_key=idempotency_key,
        keep=state.idempotency_keep,
        now=datetime.now(UTC),
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


def message_json(message: LoggedMessage) -> dict[str, Any]:
    data: dict[str, Any] = plain(message)
    data["cost_yuan"] = yuan_e4(data.pop("cost_e4"))
    return data


@router.get("/messages", summary="短信记录（最新在前；按 ID 翻页）")
def log(
    principal: Reader,
    state: State,
    campaign: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    phone: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    since: Annotated[AwareTime | None, Query()] = None,
    until: Annotated[AwareTime | None, Query()] = None,
    before_id: BeforeId = None,
    limit: Limit = 50,
) -> Any:
    page = message_page(
        state.engine,
        workspace_id=principal.workspace_id,
        campaign=campaign,
        statuses=status or (),
        phone=phone,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return {
        "messages": [message_json(m) for m in page],
        "next_before_id": page[-1].id if len(page) == limit else None,
    }


@router.get("/messages/{message_id}", summary="一条短信的状态")
def show(message_id: IdPath, principal: Reader, state: State) -> Any:
    return message_json(
        get_message(state.engine, workspace_id=principal.workspace_id, message_id=message_id)
    )
