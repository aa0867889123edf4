"""Per-recipient short links and coupons issued while planning, on both databases."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from tracking_support import NOW, add_campaign, open_shop, plan_with_tracking

from echelon.content.length import count_parts
from echelon.content.preview import contact_variables
from echelon.content.templates import approved_template_in
from echelon.db.outbox import messages
from echelon.db.tables import contacts
from echelon.db.tracking import coupons, links
from echelon.errors import InvalidInput
from echelon.tracking.links import (
    COUPON_PLACEHOLDER,
    LinkTargetMissing,
    PreviewLinks,
    allocate_coupon_codes,
    allocate_link_codes,
    preview_variables,
)
from echelon.tracking.rules import COUPON_ALPHABET
from echelon.tracking.settings import get_tracking_settings, update_tracking_settings
from echelon.workspaces.service import Workspace

SHORT = re.compile(r"https://s\.echelon\.cn/([A-Za-z0-9]{7})")


@pytest.mark.parametrize("shared", [False, True], ids=["per-recipient", "shared-render"])
def test_every_recipient_gets_their_own_link_and_coupon_tied_to_their_message(
    engine: Engine, workspace: Workspace, tmp_path: Path, shared: bool
) -> None:
    open_shop(engine, workspace, tmp_path)
    campaign_id = add_campaign(engine, workspace)
    texts = plan_with_tracking(engine, workspace, campaign_id, shared=shared)
    codes = [SHORT.search(text).group(1) for text in texts]  # type: ignore[union-attr]
    assert len(set(codes)) == 4
    with engine.connect() as conn:
        stored = conn.execute(
            select(links.c.code, links.c.target_url, messages.c.text, messages.c.contact_id)
            .join_from(links, messages, messages.c.id == links.c.message_id)
            .where(links.c.campaign_id == campaign_id)
        ).all()
        issued = conn.execute(
            select(coupons.c.code, messages.c.text, coupons.c.contact_id, messages.c.contact_id)
            .join_from(coupons, messages, messages.c.id == coupons.c.message_id)
            .where(coupons.c.campaign_id == campaign_id)
        ).all()
    assert sorted(row.code for row in stored) == sorted(codes)
    for row in stored:
        assert f"https://s.echelon.cn/{row.code}" in row.text
        assert row.target_url == "https://shop.example/sale?id=11"
    assert len(issued) == 4
    for code, text, coupon_contact, message_contact in issued:
        assert f"券{code}，" in text and coupon_contact == message_contact
        assert len(code) == 8 and set(code) <= set(COUPON_ALPHABET)


def test_parts_are_counted_on_the_link_as_sent(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    open_shop(engine, workspace, tmp_path)
    update_tracking_settings(
        engine, workspace_id=workspace.id, short_domain="go.xinghe.cn", code_length=6, now=NOW
    )
    campaign_id = add_campaign(engine, workspace)
    texts = plan_with_tracking(engine, workspace, campaign_id)
    link_format = get_tracking_settings(engine, workspace_id=workspace.id).link_format
    assert link_format.length == len("https://go.xinghe.cn/") + 6
    for text in texts:
        found = re.search(r"https://go\.xinghe\.cn/\S+", text)
        assert found is not None and len(found.group(0)) == link_format.length
        # The same text with the placeholder costs the same: a preview can count parts.
        same_length = text.replace(found.group(0), link_format.placeholder)
        assert count_parts(same_length) == count_parts(text)
    with engine.connect() as conn:
        parts = conn.execute(select(messages.c.text, messages.c.parts)).all()
    assert all(count_parts(text).parts == n for text, n in parts)


def test_a_preview_issues_nothing(engine: Engine, workspace: Workspace, tmp_path: Path) -> None:
    open_shop(engine, workspace, tmp_path)
    campaign_id = add_campaign(engine, workspace)
    texts = plan_with_tracking(engine, workspace, campaign_id, write=False)
    assert all(SHORT.search(text) for text in texts)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(links)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(coupons)).scalar_one() == 0


def test_only_what_the_template_uses_is_issued(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    open_shop(
        engine, workspace, tmp_path, body="{{ name }}您好，{{ link('https://shop.example/a') }}"
    )
    campaign_id = add_campaign(engine, workspace)
    plan_with_tracking(engine, workspace, campaign_id)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(links)).scalar_one() == 4
        assert conn.execute(select(func.count()).select_from(coupons)).scalar_one() == 0


def test_a_link_without_a_target_is_a_clear_error(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    open_shop(engine, workspace, tmp_path, body="{{ name }}您好，详情{{ link }}")
    campaign_id = add_campaign(engine, workspace)
    with pytest.raises(LinkTargetMissing, match=r"link\('https://"):
        plan_with_tracking(engine, workspace, campaign_id)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 0


def test_a_bad_target_is_a_clear_error(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    open_shop(engine, workspace, tmp_path, body="{{ name }}您好，{{ link('shop.example') }}")
    campaign_id = add_campaign(engine, workspace)
    with pytest.raises(InvalidInput, match="https://"):
        plan_with_tracking(engine, workspace, campaign_id)


def test_allocated_codes_skip_codes_already_taken(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    open_shop(engine, workspace, tmp_path)
    campaign_id = add_campaign(engine, workspace)
    plan_with_tracking(engine, workspace, campaign_id)
    with engine.connect() as conn:
        taken = set(conn.execute(select(links.c.code)).scalars())
        coupon_taken = set(conn.execute(select(coupons.c.code)).scalars())
        fresh = allocate_link_codes(conn, 2_000, 7)
        fresh_coupons = allocate_coupon_codes(conn, workspace.id, 2_000)
    assert len(set(fresh)) == 2_000 and not taken & set(fresh)
    assert len(set(fresh_coupons)) == 2_000 and not coupon_taken & set(fresh_coupons)


def test_tracking_settings_are_checked_and_kept(engine: Engine, workspace: Workspace) -> None:
    before = get_tracking_settings(engine, workspace_id=workspace.id)
    assert (before.short_domain, before.code_length) == ("s.echelon.cn", 7)
    assert (before.click_window, before.delivery_window) == (timedelta(days=5), timedelta(days=1))
    with pytest.raises(InvalidInput, match="6–8"):
        update_tracking_settings(engine, workspace_id=workspace.id, code_length=5, now=NOW)
    with pytest.raises(InvalidInput):
        update_tracking_settings(engine, workspace_id=workspace.id, short_domain="x", now=NOW)
    with pytest.raises(InvalidInput):
        update_tracking_settings(
            engine, workspace_id=workspace.id, click_window=timedelta(days=365), now=NOW
        )
    assert get_tracking_settings(engine, workspace_id=workspace.id) == before
    update_tracking_settings(
        engine, workspace_id=workspace.id, click_window=timedelta(days=3), now=NOW
    )
    after = update_tracking_settings(
        engine, workspace_id=workspace.id, short_domain="S.Shop.CN", now=NOW
    )
    assert after == get_tracking_settings(engine, workspace_id=workspace.id)
    assert (after.short_domain, after.click_window) == ("s.shop.cn", timedelta(days=3))


def test_a_preview_counts_the_parts_the_send_will_cost(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    open_shop(engine, workspace, tmp_path)
    update_tracking_settings(engine, workspace_id=workspace.id, code_length=8, now=NOW)
    sent = plan_with_tracking(engine, workspace, add_campaign(engine, workspace))
    with engine.connect() as conn:
        template = approved_template_in(conn, workspace_id=workspace.id, name="d11")
        first = select(contacts).order_by(contacts.c.id).limit(1)
        contact = dict(conn.execute(first).one()._mapping)
        variables = preview_variables(conn, workspace_id=workspace.id)
    preview = template.compose(
        contact_variables(contact | {"tags": []}) | variables, contact=contact["phone"]
    )
    assert preview != sent[0] and len(preview) == len(sent[0])
    assert count_parts(preview) == count_parts(sent[0])
    link = variables["link"]
    assert isinstance(link, PreviewLinks) and link.targets == ["https://shop.example/sale?id=11"]
    assert COUPON_PLACEHOLDER in preview


def test_each_target_has_its_own_placeholder(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    body = (
        "{{ name }}：新品{{ link('https://shop.example/new') }} "
        "清仓{{ link('https://shop.example/old') }}"
    )
    open_shop(engine, workspace, tmp_path, body=body)
    campaign_id = add_campaign(engine, workspace)
    texts = plan_with_tracking(engine, workspace, campaign_id, shared=True)
    with engine.connect() as conn:
        stored = conn.execute(
            select(links.c.code, links.c.target_url, messages.c.text)
            .join_from(links, messages, messages.c.id == links.c.message_id)
            .order_by(links.c.id)
        ).all()
    assert len(stored) == 8 and len({row.code for row in stored}) == 8
    for code, target, text in stored:
        label = text.split(f"https://s.echelon.cn/{code}")[0][-2:]
        assert label == ("新品" if target.endswith("/new") else "清仓")
    assert not any("-" in text.split("/")[-1] for text in texts)


@pytest.mark.parametrize("shared", [False, True], ids=["per-recipient", "shared-render"])
def test_colliding_codes_are_replaced_in_the_stored_text(
    engine: Engine, workspace: Workspace, tmp_path: Path, shared: bool
) -> None:
    """A source of bytes that always says 0 draws the same code again and again: every
    repeat, within a page or against a stored link, is replaced where it was written."""
    open_shop(engine, workspace, tmp_path)
    campaign_id = add_campaign(engine, workspace)
    plan_with_tracking(
        engine, workspace, campaign_id, shared=shared, random_bytes=lambda n: bytes(n)
    )
    with engine.connect() as conn:
        stored = conn.execute(
            select(links.c.code, messages.c.text).join_from(
                links, messages, messages.c.id == links.c.message_id
            )
        ).all()
        issued = conn.execute(
            select(coupons.c.code, messages.c.text).join_from(
                coupons, messages, messages.c.id == coupons.c.message_id
            )
        ).all()
    assert len({code for code, _ in stored}) == 4 and "aaaaaaa" in {c for c, _ in stored}
    assert len({code for code, _ in issued}) == 4 and "22222222" in {c for c, _ in issued}
    for code, text in stored:
        assert f"https://s.echelon.cn/{code}" in text
    for code, text in issued:
        assert f"券{code}，" in text
