"""Templates: write, edit, lint, preview for a contact, submit, approve, reject, and
their review history. Approval is a person's: a reviewer (or owner) who did not write
or submit the text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from echelon.access.models import Principal
from echelon.access.service import approve_template_as
from echelon.api.auth import State, require
from echelon.api.encoding import plain
from echelon.api.params import NamePath, Phone, Properties, audit
from echelon.content.preview import preview_template
from echelon.content.review import (
    TemplateChange,
    edit_template,
    lint_template,
    reject_template,
    submit_template,
    template_history,
)
from echelon.content.templates import (
    MAX_BODY_LENGTH,
    Template,
    create_template,
    get_template,
    list_templates,
)

router = APIRouter(tags=["模板"])

Reader = Annotated[Principal, Depends(require("templates:read"))]
Writer = Annotated[Principal, Depends(require("templates:write"))]
Reviewer = Annotated[Principal, Depends(require("templates:approve"))]
Body = Annotated[str, StringConstraints(min_length=1, max_length=MAX_BODY_LENGTH)]
Signature = Annotated[str, StringConstraints(min_length=1, max_length=16)]
Kind = Literal["marketing", "service", "verification"]


class NewTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    kind: Kind
    body: Body = Field(description="正文（Jinja2 变量，如 {{ name }}）；签名和退订语自动添加")
    signature: Signature | None = Field(None, description="不填用工作区默认签名")


class TemplateEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body | None = None
    kind: Kind | None = None
    signature: Signature | None = None
    use_workspace_signature: bool = False


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    context: Properties | None = Field(None, description="覆盖联系人资料的变量")


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


def template_json(template: Template) -> dict[str, Any]:
    data: dict[str, Any] = plain(template)
    data["variables"] = sorted(template.variables)
    return data


def _change_json(change: TemplateChange) -> dict[str, Any]:
    return {
        "template": template_json(change.template),
        "status_before": change.status_before,
        "changed": list(change.changed),
    }


@router.get("/templates", summary="模板列表（最近修改在前）")
def templates(
    principal: Reader,
    state: State,
    status: Literal["draft", "pending", "approved", "rejected"] | None = None,
) -> Any:
    found = list_templates(state.engine, workspace_id=principal.workspace_id, status=status)
    return [template_json(t) for t in found]


@router.post("/templates", status_code=201, summary="新建模板（草稿）")
def create(body: NewTemplate, principal: Writer, state: State) -> Any:
    return template_json(
        create_template(
            state.engine,
            workspace_id=principal.workspace_id,
            name=body.name,
            kind=body.kind,
            body=body.body,
            signature=body.signature,
            actor=principal.actor,
            now=datetime.now(UTC),
        )
    )


@router.get("/templates/{name}", summary="模板详情")
def show(name: NamePath, principal: Reader, state: State) -> Any:
    return template_json(get_template(state.engine, workspace_id=principal.workspace_id, name=name))


@router.patch("/templates/{name}", summary="修改模板（已通过的回到待审核）")
def edit(name: NamePath, body: TemplateEdit, principal: Writer, state: State) -> Any:
    return _change_json(
        edit_template(
            state.engine,
            workspace_id=principal.workspace_id,
            name=name,
            body=body.body,
            kind=body.kind,
            signature=body.signature,
            use_workspace_signature=body.use_workspace_signature,
            actor=principal.actor,
            now=datetime.now(UTC),
        )
    )


@router.get("/templates/{name}/lint", summary="敏感词检查（按发送时的完整文本）")
def lint(name: NamePath, principal: Reader, state: State) -> Any:
    result = lint_template(state.engine, workspace_id=principal.workspace_id, name=name)
    return plain(result) | {"blocking": plain(result.blocking)}


@router.post("/templates/{name}/preview", summary="为一位联系人预览：文本、条数、费用、敏感词")
def preview(name: NamePath, body: PreviewRequest, principal: Reader, state: State) -> Any:
    return plain(
        preview_template(
            state.engine,
            workspace_id=principal.workspace_id,
            name=name,
            phone=body.phone,
            context=body.context,
            now=datetime.now(UTC),
        )
    )


@router.post("/templates/{name}/submit", summary="提交审核")
def submit(name: NamePath, principal: Writer, state: State) -> Any:
    return _change_json(
        submit_template(
            state.engine,
            workspace_id=principal.workspace_id,
            name=name,
            actor=principal.actor,
            now=datetime.now(UTC),
        )
    )


@router.post("/templates/{name}/approve", summary="审核通过（不能审核自己编写或提交的模板）")
def approve(name: NamePath, body: Approval, principal: Reviewer, state: State) -> Any:
    change = approve_template_as(
        state.engine, principal=principal, name=name, note=body.note, now=datetime.now(UTC)
    )
    audit(
        state,
        principal,
        "template.approve",
        f"template:{change.template.name}",
        {"note": body.note},
    )
    return _change_json(change)


@router.post("/templates/{name}/reject", summary="驳回（写明原因）")
def reject(name: NamePath, body: Rejection, principal: Reviewer, state: State) -> Any:
    change = reject_template(
        state.engine,
        workspace_id=principal.workspace_id,
        name=name,
        actor=principal.actor,
        reason=body.reason,
        now=datetime.now(UTC),
    )
    audit(
        state,
        principal,
        "template.reject",
        f"template:{change.template.name}",
        {"reason": body.reason},
    )
    return _change_json(change)


@router.get("/templates/{name}/history", summary="审核历史（最早在前）")
def history(name: NamePath, principal: Reader, state: State) -> Any:
    return plain(template_history(state.engine, workspace_id=principal.workspace_id, name=name))
