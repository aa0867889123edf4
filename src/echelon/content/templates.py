"""Message templates: authoring, reading, deleting an unused one, linting, and the
approved form senders use.

A template's body is a sandboxed Jinja2 template (``render``) checked when it is
written: it must compile, may not contain 【】 (the signature is added by
composition) and may not name a private attribute. Its review status moves
``draft → pending → approved | rejected`` (``review``); any edit of an approved
template sends it back to ``pending`` and of a rejected one back to ``draft``,
so no text is ever sent that a reviewer has not approved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast

from jinja2 import Environment, nodes
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from echelon.content import queries
from echelon.content.compose import (
    MESSAGE_KINDS,
    BodyHasSignature,
    EmptyBody,
    InvalidMessageKind,
    MessageKind,
    compose,
    validate_signature,
)
from echelon.content.render import MAX_RENDERED_LENGTH, BadTemplate, CompiledTemplate
from echelon.content.render import compile_template as compile_body
from echelon.errors import EchelonError, InvalidInput, NotFound
from echelon.workspaces.service import settings_in

ReviewStatus = Literal["draft", "pending", "approved", "rejected"]
STATUS_LABELS: Final[dict[str, str]] = {
    "draft": "草稿",
    "pending": "待审核",
    "approved": "已通过",
    "rejected": "已驳回",
}
KIND_LABELS: Final[dict[str, str]] = {
    "marketing": "营销",
    "service": "通知",
    "verification": "验证码",
}
MAX_NAME_LENGTH = 100
MAX_ACTOR_LENGTH = 100
MAX_BODY_LENGTH = MAX_RENDERED_LENGTH

# Only for reading a body's syntax tree; nothing is ever rendered with it.
_PARSER: Final = Environment()


class TemplateNotFound(NotFound):
    code = "template_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"模板「{name}」不存在")
        self.name = name


class TemplateExists(InvalidInput):
    code = "template_exists"
    http_status = 409

    def __init__(self, name: str) -> None:
        super().__init__(f"模板「{name}」已存在：换一个名称，或用 templates edit 修改它")
        self.name = name


class TemplateNotApproved(EchelonError):
    code = "template_not_approved"
    http_status = 409

    def __init__(self, name: str, status: str) -> None:
        super().__init__(
            f"模板「{name}」当前{STATUS_LABELS[status]}，只有审核通过的模板才能用于发送"
        )
        self.name = name
        self.status = status


class TemplateInUse(EchelonError):
    code = "template_in_use"
    http_status = 409

    def __init__(self, name: str, campaigns: list[str], journeys: list[str]) -> None:
        named = [
            f"{what}{'、'.join(f'「{n}」' for n in names)}"
            for what, names in (("活动", campaigns), ("自动旅程", journeys))
            if names
        ]
        super().__init__(f"模板「{name}」正在被使用，不能删除：{'；'.join(named)}")
        self.name = name
        self.campaigns = campaigns
        self.journeys = journeys


class SignatureNotSet(InvalidInput):
    code = "signature_not_set"

    def __init__(self) -> None:
        super().__init__(
            "还没有短信签名：用 echelon workspace set --signature 设置工作区默认签名，"
            "或为模板指定 --signature"
        )


@dataclass(frozen=True, slots=True)
class Template:
    """A stored template; ``signature`` is its own (None: the workspace default)."""

    id: int
    name: str
    kind: MessageKind
    body: str
    signature: str | None
    review_status: ReviewStatus
    review_note: str | None
    submitted_at: datetime | None
    reviewed_at: datetime | None
    reviewed_by: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def variables(self) -> frozenset[str]:
        """Names the body reads, each of which a send must supply (or default)."""
        return compile_body(self.body).variables


@dataclass(frozen=True, slots=True)
class ApprovedTemplate:
    """An approved template ready to send, with the signature and opt-out line that
    applied when it was loaded. Every message composed from it must still be
    linted: variables can bring words into the text that review never saw."""

    id: int
    name: str
    kind: MessageKind
    body: str
    signature: str
    opt_out_text: str
    approved_at: datetime
    approved_by: str
    compiled: CompiledTemplate

    def compose(self, variables: Mapping[str, object], *, contact: str) -> str:
        """The exact text ``contact`` receives (``render`` then ``compose``)."""
        body = self.compiled.render(variables, contact=contact)
        return compose(
            body, kind=self.kind, signature=self.signature, opt_out_text=self.opt_out_text
        )


def check_name(name: str) -> str:
    """The name stripped: 1–100 printable characters."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidInput(f"模板名称须为 1–{MAX_NAME_LENGTH} 个字，且不含换行")
    return name


def check_kind(kind: str) -> MessageKind:
    """``kind`` if it is marketing, service or verification."""
    if kind not in MESSAGE_KINDS:
        raise InvalidMessageKind(kind)
    return cast(MessageKind, kind)


def check_actor(actor: str) -> str:
    """Who acts, stripped: free text until users exist, never empty."""
    actor = actor.strip()
    if not actor or len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidInput(f"操作人须为 1–{MAX_ACTOR_LENGTH} 个字（--by）")
    return actor


def check_body(body: str) -> str:
    """The body stripped, if it may be stored: not empty, no 【】, within length,
    compiles in the sandbox and names no private attribute (``x.__class__``)."""
    body = body.strip()
    if not body:
        raise EmptyBody()
    if "【" in body or "】" in body:
        raise BodyHasSignature()
    if len(body) > MAX_BODY_LENGTH:
        raise InvalidInput(f"模板正文最多 {MAX_BODY_LENGTH} 个字，现有 {len(body)} 个")
    compile_body(body)
    # The sandbox refuses these when rendering; refusing them here turns a failure
    # for every contact at send time into one clear error while writing.
    for node in _PARSER.parse(body).find_all((nodes.Getattr, nodes.Getitem)):
        attribute: object = None
        if isinstance(node, nodes.Getattr):
            attribute = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attribute = node.arg.value
        if isinstance(attribute, str) and attribute.startswith("_"):
            raise BadTemplate(node.lineno, f"不能访问以 _ 开头的属性 {attribute}")
    return body


def create_template(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    kind: str,
    body: str,
    signature: str | None = None,
    actor: str,
    now: datetime,
) -> Template:
    """A new ``draft`` template; its creation starts the review history."""
    name, checked_kind, body = check_name(name), check_kind(kind), check_body(body)
    actor = check_actor(actor)
    if signature is not None:
        validate_signature(signature)
    try:
        with engine.begin() as conn:
            if queries.template_row(conn, workspace_id=workspace_id, name=name) is not None:
                raise TemplateExists(name)
            template_id = queries.insert_template(
                conn,
                {
                    "workspace_id": workspace_id,
                    "name": name,
                    "kind": checked_kind,
                    "body": body,
                    "signature": signature,
                    "review_status": "draft",
                    "created_at": now,
                    "updated_at": now,
                },
            )
            effective = signature or settings_in(conn, workspace_id=workspace_id).signature
            queries.record_review(
                conn,
                workspace_id=workspace_id,
                template_id=template_id,
                action="created",
                actor=actor,
                note=None,
                kind=checked_kind,
                body=body,
                signature=effective,
                at=now,
            )
            return load(conn, workspace_id=workspace_id, name=name)
    except IntegrityError:
        # Created concurrently between our check and insert.
        raise TemplateExists(name) from None


def delete_template(engine: Engine, *, workspace_id: int, name: str) -> Template:
    """Delete a template no campaign or journey sends (``TemplateInUse`` lists those
    that do), with its review history; returns it as it was."""
    with engine.begin() as conn:
        template = load(conn, workspace_id=workspace_id, name=name, lock=True)
        campaigns, journeys = queries.template_users(
            conn, workspace_id=workspace_id, template_id=template.id, name=template.name
        )
        if campaigns or journeys:
            raise TemplateInUse(template.name, campaigns, journeys)
        queries.delete_template(conn, workspace_id=workspace_id, template_id=template.id)
        return template


def get_template(engine: Engine, *, workspace_id: int, name: str) -> Template:
    """The workspace's template ``name`` in any status; ``TemplateNotFound`` otherwise."""
    with engine.connect() as conn:
        return load(conn, workspace_id=workspace_id, name=name)


def list_templates(
    engine: Engine, *, workspace_id: int, status: str | None = None, limit: int | None = None
) -> list[Template]:
    """The workspace's templates, most recently changed first."""
    if status is not None and status not in STATUS_LABELS:
        choices = "、".join(f"{k}（{v}）" for k, v in STATUS_LABELS.items())
        raise InvalidInput(f"审核状态 {status!r} 未知，可选：{choices}")
    with engine.connect() as conn:
        rows = queries.template_rows(conn, workspace_id=workspace_id, status=status, limit=limit)
    return [_template(row) for row in rows]


def approved_template(engine: Engine, *, workspace_id: int, name: str) -> ApprovedTemplate:
    """The template ``name`` for sending; ``TemplateNotApproved`` unless approved."""
    with engine.connect() as conn:
        return approved_template_in(conn, workspace_id=workspace_id, name=name)


def approved_template_in(conn: Connection, *, workspace_id: int, name: str) -> ApprovedTemplate:
    """``approved_template`` inside the caller's transaction (the campaign planner)."""
    template = load(conn, workspace_id=workspace_id, name=name)
    settings = settings_in(conn, workspace_id=workspace_id)
    if template.review_status != "approved":
        raise TemplateNotApproved(template.name, template.review_status)
    signature = template.signature or settings.signature
    if signature is None:
        raise SignatureNotSet()
    # Approval sets both in the same statement (review.approve_template).
    assert template.reviewed_at is not None
    assert template.reviewed_by is not None
    return ApprovedTemplate(
        id=template.id,
        name=template.name,
        kind=template.kind,
        body=template.body,
        signature=signature,
        opt_out_text=settings.opt_out_text,
        approved_at=template.reviewed_at,
        approved_by=template.reviewed_by,
        compiled=compile_body(template.body),
    )


def load(conn: Connection, *, workspace_id: int, name: str, lock: bool = False) -> Template:
    """The template inside the caller's transaction; ``TemplateNotFound`` if the
    workspace has none of that name (another workspace's is never visible)."""
    row = queries.template_row(conn, workspace_id=workspace_id, name=name.strip(), lock=lock)
    if row is None:
        raise TemplateNotFound(name.strip())
    return _template(row)


def _template(row: Any) -> Template:
    return Template(
        id=row.id,
        name=row.name,
        kind=row.kind,
        body=row.body,
        signature=row.signature,
        review_status=row.review_status,
        review_note=row.review_note,
        submitted_at=row.submitted_at,
        reviewed_at=row.reviewed_at,
        reviewed_by=row.reviewed_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
