"""Segments: saved audience definitions (JSON or a preset), edited, counted live, and
their members a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from echelon.access.models import Principal
from echelon.api.auth import State, require
from echelon.api.encoding import plain
from echelon.api.params import AfterId, Limit, NamePath, id_or_name
from echelon.segments.service import (
    SegmentNotFound,
    count_segment,
    create_from_preset,
    create_segment,
    edit_segment,
    get_segment,
    list_members,
    list_segments,
)

router = APIRouter(tags=["分群"])

Reader = Annotated[Principal, Depends(require("segments:read"))]
Writer = Annotated[Principal, Depends(require("segments:write"))]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(max_length=500)]
Definition = Annotated[dict[str, Any], Field(description="分群定义（JSON 条件树）")]


class NewSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    definition: Definition
    description: Description | None = None


class PresetSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: Name | None = None
    params: (
        Annotated[
            dict[
                Annotated[str, StringConstraints(max_length=32)],
                Annotated[str, StringConstraints(max_length=32)],
            ],
            Field(max_length=10),
        ]
        | None
    ) = None


class SegmentEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    definition: Definition | None = None
    description: Description | None = None


class DefinitionOnly(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: Definition


def _ref(segment: str) -> str:
    return id_or_name(segment, SegmentNotFound)


@router.get("/segments", summary="分群列表")
def segments(principal: Reader, state: State) -> Any:
    return plain(list_segments(state.engine, workspace_id=principal.workspace_id))


@router.post("/segments", status_code=201, summary="新建分群")
def create(body: NewSegment, principal: Writer, state: State) -> Any:
    return plain(
        create_segment(
            state.engine,
            workspace_id=principal.workspace_id,
            name=body.name,
            definition=body.definition,
            description=body.description,
            now=datetime.now(UTC),
        )
    )


@router.post(
    "/segments/from-preset", status_code=201, summary="从预设新建分群（沉睡客户、高价值……）"
)
def create_preset(body: PresetSegment, principal: Writer, state: State) -> Any:
    return plain(
        create_from_preset(
            state.engine,
            workspace_id=principal.workspace_id,
            preset=body.preset,
            name=body.name,
            params=body.params,
            now=datetime.now(UTC),
        )
    )


@router.post("/segments/count", summary="统计一个未保存的分群定义的人数")
def count_definition(body: DefinitionOnly, principal: Reader, state: State) -> Any:
    return plain(
        count_segment(
            state.engine,
            workspace_id=principal.workspace_id,
            definition=body.definition,
            now=datetime.now(UTC),
        )
    )


@router.get("/segments/{segment}", summary="分群详情（名称或 ID）")
def show(segment: NamePath, principal: Reader, state: State) -> Any:
    return plain(
        get_segment(state.engine, workspace_id=principal.workspace_id, segment=_ref(segment))
    )


@router.patch("/segments/{segment}", summary="修改分群")
def edit(segment: NamePath, body: SegmentEdit, principal: Writer, state: State) -> Any:
    return plain(
        edit_segment(
            state.engine,
            workspace_id=principal.workspace_id,
            segment=_ref(segment),
            definition=body.definition,
            name=body.name,
            description=body.description,
            now=datetime.now(UTC),
        )
    )


@router.get("/segments/{segment}/count", summary="分群当前人数（按运营商、省份）")
def count(segment: NamePath, principal: Reader, state: State) -> Any:
    return plain(
        count_segment(
            state.engine,
            workspace_id=principal.workspace_id,
            segment=_ref(segment),
            now=datetime.now(UTC),
        )
    )


@router.get("/segments/{segment}/members", summary="分群成员（按联系人 ID 翻页）")
def members(
    segment: NamePath,
    principal: Reader,
    state: State,
    after_id: AfterId = 0,
    limit: Limit = 50,
) -> Any:
    found = list_members(
        state.engine,
        workspace_id=principal.workspace_id,
        segment=_ref(segment),
        now=datetime.now(UTC),
        after_id=after_id,
        limit=limit,
    )
    return {
        "members": plain(found),
        "next_after_id": found[-1].id if len(found) == limit else None,
    }
