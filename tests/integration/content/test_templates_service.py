"""Templates on both databases: the review status machine, the word gate, tenancy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from content_support import BODY, NOW, make
from sqlalchemy import Engine

from echelon.content.compose import BodyHasSignature, EmptyBody, InvalidSignature
from echelon.content.preview import LinkPlaceholder
from echelon.content.render import BadTemplate
from echelon.content.review import (
    BlockedWords,
    ReviewNotAllowed,
    TemplateChange,
    approve_template,
    edit_template,
    lint_template,
    reject_template,
    submit_template,
    template_history,
)
from echelon.content.templates import (
    SignatureNotSet,
    TemplateExists,
    TemplateNotApproved,
    TemplateNotFound,
    approved_template,
    get_template,
    list_templates,
)
from echelon.content.words import Category, Severity
from echelon.content.workspace_words import add_word, remove_word
from echelon.errors import InvalidInput
from echelon.workspaces.service import Workspace, create_workspace

LATER = NOW + timedelta(hours=1)


def submit(engine: Engine, ws: Workspace, name: str = "双11") -> TemplateChange:
    return submit_template(engine, workspace_id=ws.id, name=name, actor="运营小王", now=LATER)


def approve(engine: Engine, ws: Workspace, name: str = "双11") -> TemplateChange:
    return approve_template(engine, workspace_id=ws.id, name=name, actor="合规老李", now=LATER)


def reject(engine: Engine, ws: Workspace, name: str = "双11") -> TemplateChange:
    return reject_template(
        engine, workspace_id=ws.id, name=name, actor="合规老李", reason="链接不明", now=LATER
    )


def edit(engine: Engine, ws: Workspace, body: str, name: str = "双11") -> TemplateChange:
    return edit_template(
        engine, workspace_id=ws.id, name=name, body=body, actor="运营小王", now=LATER
    )


def in_status(engine: Engine, ws: Workspace, status: str) -> None:
    """Create 双11 and drive it to ``status`` through the service functions."""
    make(engine, ws)
    if status != "draft":
        submit(engine, ws)
    if status == "approved":
        approve(engine, ws)
    elif status == "rejected":
        reject(engine, ws)


def status_of(engine: Engine, ws: Workspace, name: str = "双11") -> str:
    return get_template(engine, workspace_id=ws.id, name=name).review_status


def test_a_new_template_is_a_draft_with_its_creation_recorded(
    engine: Engine, signed: Workspace
) -> None:
    template = make(engine, signed)
    assert (template.review_status, template.kind, template.signature) == (
        "draft",
        "marketing",
        None,
    )
    assert template.variables == {"name", "coupon", "link"}
    [created] = template_history(engine, workspace_id=signed.id, name="双11")
    assert (created.action, created.actor, created.body, created.signature) == (
        "created",
        "运营小王",
        BODY,
        "星河商城",
    )


ACTIONS: dict[str, Callable[[Engine, Workspace], TemplateChange]] = {
    "submit": submit,
    "approve": approve,
    "reject": reject,
}
ALLOWED = {("draft", "submit"): "pending", ("pending", "approve"): "approved"}
ALLOWED[("pending", "reject")] = "rejected"


@pytest.mark.parametrize("status", ["draft", "pending", "approved", "rejected"])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_review_transition_is_allowed_or_refused(
    engine: Engine, signed: Workspace, status: str, action: str
) -> None:
    in_status(engine, signed, status)
    history = template_history(engine, workspace_id=signed.id, name="双11")
    expected = ALLOWED.get((status, action))
    if expected is None:
        with pytest.raises(ReviewNotAllowed) as refused:
            ACTIONS[action](engine, signed)
        assert refused.value.code == "review_not_allowed" and "双11" in refused.value.message
        assert status_of(engine, signed) == status
        assert template_history(engine, workspace_id=signed.id, name="双11") == history
        return
    change = ACTIONS[action](engine, signed)
    assert (change.status_before, change.template.review_status) == (status, expected)
    assert change.changed == ("review_status",)
    assert len(template_history(engine, workspace_id=signed.id, name="双11")) == len(history) + 1


@pytest.mark.parametrize(
    ("status", "after"),
    [("draft", "draft"), ("pending", "pending"), ("approved", "pending"), ("rejected", "draft")],
)
def test_an_edit_moves_the_status_back_for_review(
    engine: Engine, signed: Workspace, status: str, after: str
) -> None:
    in_status(engine, signed, status)
    change = edit(engine, signed, "{{ name | default('会员') }}您好，会员日专享{{ coupon }}券")
    template = change.template
    assert (change.status_before, template.review_status) == (status, after)
    assert "body" in change.changed
    # The review fields describe the current text only; the history keeps the rest.
    assert (template.reviewed_at, template.reviewed_by, template.review_note) == (None,) * 3
    last = template_history(engine, workspace_id=signed.id, name="双11")[-1]
    assert (last.action, last.body) == ("edited", template.body)


def test_an_edit_that_changes_nothing_keeps_the_approval(engine: Engine, signed: Workspace) -> None:
    in_status(engine, signed, "approved")
    history = template_history(engine, workspace_id=signed.id, name="双11")
    change = edit(engine, signed, f"  {BODY}\n")  # surrounding whitespace is not text
    assert change.changed == () and change.template.review_status == "approved"
    assert template_history(engine, workspace_id=signed.id, name="双11") == history
    approved_template(engine, workspace_id=signed.id, name="双11")


def test_only_an_approved_template_can_be_sent(engine: Engine, signed: Workspace) -> None:
    make(engine, signed)
    with pytest.raises(TemplateNotApproved) as refused:
        approved_template(engine, workspace_id=signed.id, name="双11")
    assert refused.value.code == "template_not_approved" and "草稿" in refused.value.message
    submit(engine, signed)
    approve(engine, signed)
    ready = approved_template(engine, workspace_id=signed.id, name="双11")
    assert (ready.signature, ready.opt_out_text, ready.approved_by) == (
        "星河商城",
        "拒收请回复R",
        "合规老李",
    )
    text = ready.compose({"coupon": "50元", "link": LinkPlaceholder()}, contact="+8613800138000")
    assert text.startswith("【星河商城】会员您好，双11会员专享50元券") and text.endswith(
        "拒收请回复R"
    )
    edit(engine, signed, "会员日专享{{ coupon }}券")
    with pytest.raises(TemplateNotApproved):
        approved_template(engine, workspace_id=signed.id, name="双11")


def test_approval_and_rejection_are_recorded_with_who_and_which_text(
    engine: Engine, signed: Workspace
) -> None:
    in_status(engine, signed, "rejected")
    rejected = get_template(engine, workspace_id=signed.id, name="双11")
    assert (rejected.reviewed_by, rejected.review_note) == ("合规老李", "链接不明")
    edit(engine, signed, "会员日专享{{ coupon }}券")
    submit(engine, signed)
    approve(engine, signed)
    history = template_history(engine, workspace_id=signed.id, name="双11")
    assert [(r.action, r.actor) for r in history] == [
        ("created", "运营小王"),
        ("submitted", "运营小王"),
        ("rejected", "合规老李"),
        ("edited", "运营小王"),
        ("submitted", "运营小王"),
        ("approved", "合规老李"),
    ]
    assert history[2].note == "链接不明" and history[2].body == BODY
    assert history[-1].body == "会员日专享{{ coupon }}券" and history[-1].at == LATER


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_rejection_needs_a_reason(engine: Engine, signed: Workspace, reason: str) -> None:
    in_status(engine, signed, "pending")
    with pytest.raises(InvalidInput, match="原因"):
        reject_template(
            engine, workspace_id=signed.id, name="双11", actor="老李", reason=reason, now=LATER
        )
    assert status_of(engine, signed) == "pending"


def test_block_words_stop_submission_and_approval(engine: Engine, signed: Workspace) -> None:
    make(engine, signed, body="国家级品质，会员专享{{ coupon }}券")
    with pytest.raises(BlockedWords) as refused:
        submit(engine, signed)
    assert refused.value.words == ["国家级"] and "广告法" in refused.value.message
    assert status_of(engine, signed) == "draft"

    # A word the workspace lists after submission stops the approval.
    make(engine, signed, name="会员日", body="会员日预售开启")
    submit(engine, signed, "会员日")
    add_word(engine, workspace_id=signed.id, word="预售", suggestion="提前购", now=NOW)
    with pytest.raises(BlockedWords) as refused:
        approve(engine, signed, "会员日")
    assert refused.value.words == ["预售"] and "提前购" in refused.value.message
    assert status_of(engine, signed, "会员日") == "pending"
    remove_word(engine, workspace_id=signed.id, word="预售")
    assert approve(engine, signed, "会员日").template.review_status == "approved"


def test_words_split_around_a_variable_are_caught(engine: Engine, signed: Workspace) -> None:
    make(engine, signed, body="全场最{{ coupon }}佳选择")
    lint = lint_template(engine, workspace_id=signed.id, name="双11")
    assert lint.hits == [] and [h.word for h in lint.sample_hits] == ["最佳"]
    with pytest.raises(BlockedWords):
        submit(engine, signed)


def test_warn_words_do_not_stop_approval(engine: Engine, signed: Workspace) -> None:
    make(engine, signed, body="第一次下单立减{{ coupon }}")
    lint = lint_template(engine, workspace_id=signed.id, name="双11")
    assert [(h.word, h.severity) for h in lint.hits] == [("第一", Severity.WARN)]
    submit(engine, signed)
    assert approve(engine, signed).template.review_status == "approved"


def test_workspace_words_take_effect_in_lint(engine: Engine, signed: Workspace) -> None:
    make(engine, signed, body="限时秒杀，专享{{ coupon }}")
    assert lint_template(engine, workspace_id=signed.id, name="双11").hits == []
    add_word(
        engine,
        workspace_id=signed.id,
        word="秒杀",
        category=Category.INDUCING,
        severity=Severity.WARN,
        now=NOW,
    )
    lint = lint_template(engine, workspace_id=signed.id, name="双11")
    assert lint.text == "【星河商城】限时秒杀，专享{{ coupon }} 拒收请回复R"
    [hit] = lint.hits
    assert (hit.word, hit.category, lint.text[hit.start : hit.end]) == (
        "秒杀",
        Category.INDUCING,
        "秒杀",
    )


HOSTILE = [
    ("{% for t in tags %}{{ t }}{% endfor %}", BadTemplate),
    ("{% include 'secrets.txt' %}", BadTemplate),
    ("{% import 'os' as os %}", BadTemplate),
    ("{% macro m() %}x{% endmacro %}{{ m() }}", BadTemplate),
    ("{{ name.__class__.__mro__[1].__subclasses__() }}", BadTemplate),
    ("{{ attributes['__class__'] }}", BadTemplate),
    ("{{ link.__globals__ }}", BadTemplate),
    ("{{ name ", BadTemplate),
    ("{{ name | attr('__class__') }}", BadTemplate),
    ("【星河商城】您好", BodyHasSignature),
    ("   ", EmptyBody),
]


@pytest.mark.parametrize(("body", "error"), HOSTILE)
def test_hostile_or_broken_bodies_are_refused_at_create(
    engine: Engine, signed: Workspace, body: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        make(engine, signed, body=body)
    assert list_templates(engine, workspace_id=signed.id) == []


def test_names_are_unique_per_workspace_and_invisible_across(
    engine: Engine, signed: Workspace
) -> None:
    make(engine, signed)
    submit(engine, signed)
    with pytest.raises(TemplateExists):
        make(engine, signed)
    other, _ = create_workspace(engine, slug="other", name="别家")
    for attempt in (
        lambda: get_template(engine, workspace_id=other.id, name="双11"),
        lambda: approve(engine, other),
        lambda: edit(engine, other, "改掉"),
        lambda: lint_template(engine, workspace_id=other.id, name="双11"),
        lambda: approved_template(engine, workspace_id=other.id, name="双11"),
    ):
        with pytest.raises(TemplateNotFound):
            attempt()
    assert status_of(engine, signed) == "pending"
    assert make(engine, other).name == "双11"  # the same name is free in another workspace
    assert [t.name for t in list_templates(engine, workspace_id=other.id)] == ["双11"]


def test_a_signature_is_needed_before_review(engine: Engine, workspace: Workspace) -> None:
    with pytest.raises(InvalidSignature):
        make(engine, workspace, signature="【星河】")
    make(engine, workspace)
    with pytest.raises(SignatureNotSet):
        submit(engine, workspace)
    edit_template(
        engine, workspace_id=workspace.id, name="双11", signature="星河优选", actor="x", now=LATER
    )
    submit(engine, workspace)
    approve(engine, workspace)
    assert approved_template(engine, workspace_id=workspace.id, name="双11").signature == "星河优选"


def test_list_filters_by_status(engine: Engine, signed: Workspace) -> None:
    make(engine, signed, name="草稿一")
    make(engine, signed, name="待审一")
    submit(engine, signed, "待审一")
    assert [t.name for t in list_templates(engine, workspace_id=signed.id, status="pending")] == [
        "待审一"
    ]
    assert {t.name for t in list_templates(engine, workspace_id=signed.id)} == {"草稿一", "待审一"}
    with pytest.raises(InvalidInput, match="审核状态"):
        list_templates(engine, workspace_id=signed.id, status="done")
