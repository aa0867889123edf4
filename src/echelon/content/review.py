"""Template review: the status machine, the lint that gates it, and its history.

    draft ──submit──▶ pending ──approve──▶ approved
      ▲                  │ └───reject───▶ rejected
      └──── edit ────────┼───────────────────┘  (edit of rejected → draft)
           edit of approved → pending;  edit of pending stays pending

Submitting and approving both refuse a text with ``block`` words (shipped or the
workspace's) or without a signature, so nothing reaches a reviewer, or a sender,
that could not go out. Every change appends to ``template_reviews`` with the
text as it then stood: who approved which text, and when, is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine

from echelon.content import queries
from echelon.content.compose import compose, validate_signature
from echelon.content.preview import tracked_placeholders
from echelon.content.render import compile_template
from echelon.content.templates import (
    STATUS_LABELS,
    SignatureNotSet,
    Template,
    check_actor,
    check_body,
    check_kind,
    load,
)
from echelon.content.words import Hit, Severity
from echelon.content.workspace_words import workspace_checker
from echelon.errors import EchelonError, InvalidInput
from echelon.workspaces.service import ContentSettings, settings_in

MAX_NOTE_LENGTH = 500

_ACTIONS: Final = {"submit": "提交审核", "approve": "审核通过", "reject": "驳回"}
_HINTS: Final = {
    "draft": "请先提交审核（templates submit）",
    "rejected": "请先修改（templates edit），它会回到草稿，再提交审核",
    "pending": "它已在等待审核",
    "approved": "如需改动请直接修改，它会回到待审核",
}
# What an edit does to the status: approved text changed needs review again;
# rejected text changed is a new draft.
_AFTER_EDIT: Final = {"approved": "pending", "rejected": "draft"}
_TRACKED: Final = ("body", "kind", "signature", "review_status")


class ReviewNotAllowed(EchelonError):
    code = "review_not_allowed"
    http_status = 409

    def __init__(self, name: str, status: str, action: str) -> None:
        super().__init__(
            f"模板「{name}」当前{STATUS_LABELS[status]}，不能{_ACTIONS[action]}：{_HINTS[status]}"
        )
        self.name, self.status, self.action = name, status, action


class BlockedWords(InvalidInput):
    code = "blocked_words"

    def __init__(self, name: str, hits: list[Hit]) -> None:
        words = "、".join(_describe(hit) for hit in hits)
        super().__init__(f"模板「{name}」含有禁止使用的词：{words}；修改后才能提交或通过审核")
        self.words = [hit.word for hit in hits]


def _describe(hit: Hit) -> str:
    advice = f"，可改为「{hit.suggestion}」" if hit.suggestion else ""
    return f"{hit.word}（{hit.category.label}{advice}）"


@dataclass(frozen=True, slots=True)
class TemplateChange:
    """A template after a change; ``changed`` names the fields that changed."""

    template: Template
    status_before: str
    changed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LintResult:
    """Hits in ``text`` (the body composed with signature and opt-out line, or the
    bare body while no signature is set) and in ``sample_text``: the same with
    every variable empty, which shows words split around a variable (最{{x}}高).
    ``sample_text`` is None when the template cannot render with empty values."""

    text: str
    hits: list[Hit]
    sample_text: str | None = None
    sample_hits: list[Hit] = field(default_factory=list)

    @property
    def blocking(self) -> list[Hit]:
        """Distinct ``block`` hits, by word, from both texts."""
        found: dict[str, Hit] = {}
        for hit in [*self.hits, *self.sample_hits]:
            if hit.severity is Severity.BLOCK:
                found.setdefault(hit.word, hit)
        return list(found.values())


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    action: str
    actor: str
    note: str | None
    kind: str
    body: str
    signature: str | None
    at: datetime


def edit_template(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    body: str | None = None,
    kind: str | None = None,
    signature: str | None = None,
    use_workspace_signature: bool = False,
    actor: str,
    now: datetime,
) -> TemplateChange:
    """Change body, kind or signature (None leaves each as is). An edit that changes
    nothing changes nothing, status included; otherwise approved → pending and
    rejected → draft, and the review fields are cleared for the new text."""
    actor = check_actor(actor)
    wanted: dict[str, Any] = {}
    if body is not None:
        wanted["body"] = check_body(body)
    if kind is not None:
        wanted["kind"] = check_kind(kind)
    if use_workspace_signature:
        wanted["signature"] = None
    elif signature is not None:
        wanted["signature"] = validate_signature(signature)
    with engine.begin() as conn:
        current = load(conn, workspace_id=workspace_id, name=name, lock=True)
        changed = tuple(key for key, value in wanted.items() if getattr(current, key) != value)
        if not changed:
            return TemplateChange(current, current.review_status)
        status = _AFTER_EDIT.get(current.review_status, current.review_status)
        values = {key: wanted[key] for key in changed} | {"updated_at": now}
        values |= {"review_status": status, "reviewed_at": None, "reviewed_by": None}
        values |= {"review_note": None, "submitted_at": now if status == "pending" else None}
        note = None
        if status != current.review_status:
            note = f"{STATUS_LABELS[current.review_status]} → {STATUS_LABELS[status]}"
        return _apply(
            conn, workspace_id, current, values, action="edited", actor=actor, note=note, now=now
        )


def submit_template(
    engine: Engine, *, workspace_id: int, name: str, actor: str, now: datetime
) -> TemplateChange:
    """``draft → pending``, refused while the text has ``block`` words or no signature."""
    actor = check_actor(actor)
    with engine.begin() as conn:
        current = _reviewable(conn, workspace_id, name, "draft", "submit")
        values = {"review_status": "pending", "submitted_at": now, "updated_at": now}
        return _apply(
            conn, workspace_id, current, values, action="submitted", actor=actor, note=None, now=now
        )


def approve_template(
    engine: Engine,
    *,
    workspace_id: int,
    name: str,
    actor: str,
    note: str | None = None,
    now: datetime,
) -> TemplateChange:
    """``pending → approved`` by ``actor``; refused on ``block`` words or no signature."""
    actor, note = check_actor(actor), _note(note, required=False)
    with engine.begin() as conn:
        current = _reviewable(conn, workspace_id, name, "pending", "approve")
        values = {"review_status": "approved", "reviewed_at": now, "reviewed_by": actor}
        values |= {"review_note": note, "updated_at": now}
        return _apply(
            conn, workspace_id, current, values, action="approved", actor=actor, note=note, now=now
        )


def reject_template(
    engine: Engine, *, workspace_id: int, name: str, actor: str, reason: str, now: datetime
) -> TemplateChange:
    """``pending → rejected`` by ``actor``, with the reason the author will read."""
    actor, checked = check_actor(actor), _note(reason, required=True)
    with engine.begin() as conn:
        current = load(conn, workspace_id=workspace_id, name=name, lock=True)
        if current.review_status != "pending":
            raise ReviewNotAllowed(current.name, current.review_status, "reject")
        values = {"review_status": "rejected", "reviewed_at": now, "reviewed_by": actor}
        values |= {"review_note": checked, "updated_at": now}
        return _apply(
            conn,
            workspace_id,
            current,
            values,
            action="rejected",
            actor=actor,
            note=checked,
            now=now,
        )


def lint_template(engine: Engine, *, workspace_id: int, name: str) -> LintResult:
    """Word hits of the template as it would be composed, with workspace words."""
    with engine.connect() as conn:
        template = load(conn, workspace_id=workspace_id, name=name)
        return lint_in(conn, workspace_id, template, settings_in(conn, workspace_id=workspace_id))


def template_history(engine: Engine, *, workspace_id: int, name: str) -> list[ReviewRecord]:
    """Every change of the template, oldest first, each with the text it concerned."""
    with engine.connect() as conn:
        template = load(conn, workspace_id=workspace_id, name=name)
        rows = queries.review_rows(conn, workspace_id=workspace_id, template_id=template.id)
    return [ReviewRecord(**row._mapping) for row in rows]


def lint_in(
    conn: Connection, workspace_id: int, template: Template, settings: ContentSettings
) -> LintResult:
    """``lint_template`` inside the caller's transaction, for the review gate."""
    checker = workspace_checker(conn, workspace_id=workspace_id)
    signature = template.signature or settings.signature
    text = _composed(template, template.body, signature, settings.opt_out_text)
    sample: str | None = None
    try:
        empty: dict[str, object] = dict.fromkeys(template.variables, "")
        empty |= tracked_placeholders(conn, workspace_id=workspace_id)
        rendered = compile_template(template.body).render(empty, contact="（空变量示例）")
        sample = _composed(template, rendered, signature, settings.opt_out_text)
    except EchelonError:
        # Arithmetic on a variable, an empty body once rendered...: values differ per
        # contact, so the sample is skipped, not the template refused.
        pass
    return LintResult(
        text, checker.lint(text), sample, checker.lint(sample) if sample is not None else []
    )


def _composed(template: Template, body: str, signature: str | None, opt_out: str) -> str:
    if signature is None:
        return body
    return compose(body, kind=template.kind, signature=signature, opt_out_text=opt_out)


def _reviewable(
    conn: Connection, workspace_id: int, name: str, status: str, action: str
) -> Template:
    """The template locked for ``action``: in ``status``, signed and free of block words."""
    current = load(conn, workspace_id=workspace_id, name=name, lock=True)
    if current.review_status != status:
        raise ReviewNotAllowed(current.name, current.review_status, action)
    settings = settings_in(conn, workspace_id=workspace_id)
    if (current.signature or settings.signature) is None:
        raise SignatureNotSet()
    blocking = lint_in(conn, workspace_id, current, settings).blocking
    if blocking:
        raise BlockedWords(current.name, blocking)
    return current


def _apply(
    conn: Connection,
    workspace_id: int,
    current: Template,
    values: dict[str, Any],
    *,
    action: str,
    actor: str,
    note: str | None,
    now: datetime,
) -> TemplateChange:
    queries.update_template(conn, workspace_id=workspace_id, template_id=current.id, values=values)
    after = load(conn, workspace_id=workspace_id, name=current.name)
    settings = settings_in(conn, workspace_id=workspace_id)
    queries.record_review(
        conn,
        workspace_id=workspace_id,
        template_id=current.id,
        action=action,
        actor=actor,
        note=note,
        kind=after.kind,
        body=after.body,
        signature=after.signature or settings.signature,
        at=now,
    )
    changed = tuple(key for key in _TRACKED if getattr(current, key) != getattr(after, key))
    return TemplateChange(after, current.review_status, changed)


def _note(text: str | None, *, required: bool) -> str | None:
    text = (text or "").strip() or None
    if text is None and required:
        raise InvalidInput("驳回须写明原因（--reason），作者会据此修改")
    if text is not None and len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"审核意见最多 {MAX_NOTE_LENGTH} 个字")
    return text
