"""Preview for a real contact on both databases: variables, fallbacks, link, parts, cost."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from content_support import NAMELESS, NOW, PEAK, ZHANG, make
from sqlalchemy import Engine

from echelon.content.length import TRACKED_LINK_LENGTH
from echelon.content.preview import (
    PREVIEW_LINK,
    InvalidLink,
    Preview,
    check_workspace_text,
    contact_variables,
    preview_template,
)
from echelon.content.render import MissingVariable
from echelon.content.words import Severity
from echelon.content.workspace_words import add_word
from echelon.errors import NotFound
from echelon.workspaces.service import Workspace, create_workspace

# The default short-link domain with 7 dashes: a code never issued, as long as a real one.
WORKSPACE_LINK = "https://s.echelon.cn/-------"


def preview(
    engine: Engine, ws: Workspace, phone: str = ZHANG, name: str = "双11", **context: object
) -> Preview:
    return preview_template(
        engine, workspace_id=ws.id, name=name, phone=phone, context=context, now=NOW
    )


def test_preview_renders_the_exact_text_with_parts_and_cost(
    engine: Engine, shoppers: Workspace
) -> None:
    make(engine, shoppers)
    shown = preview(engine, shoppers, phone="138 0013 8000", coupon="50元")
    # The workspace's short-link format with a code never issued: as long as a real link.
    assert (
        shown.text == f"【星河商城】张三您好，双11会员专享50元券，详情{WORKSPACE_LINK} 拒收请回复R"
    )
    assert len(PREVIEW_LINK) == TRACKED_LINK_LENGTH and PREVIEW_LINK.isascii()
    assert (shown.phone, shown.review_status, shown.links) == (
        ZHANG,
        "draft",
        ["https://shop.cn/11"],
    )
    assert (shown.count.encoding, shown.count.parts) == ("UCS-2", 1)
    assert shown.count.characters == len(shown.text)
    assert shown.cost == Decimal("0.06") and shown.hits == []


def test_cost_follows_the_workspace_plan_and_the_peak_hour(
    engine: Engine, shoppers: Workspace
) -> None:
    make(engine, shoppers, body="{{ name }}您好，" + "双11会员专享活动现已开启" * 6)
    at_noon = preview(engine, shoppers)
    assert at_noon.count.parts == 2 and at_noon.cost == Decimal("0.12")
    at_peak = preview_template(engine, workspace_id=shoppers.id, name="双11", phone=ZHANG, now=PEAK)
    assert at_peak.cost == Decimal("0.14")  # 2 × 0.069 = 0.138, rounded to the fen


def test_a_missing_variable_names_itself_and_the_contact(
    engine: Engine, shoppers: Workspace
) -> None:
    make(engine, shoppers, body="{{ name }}您好，专享{{ coupon }}券")
    with pytest.raises(MissingVariable) as missing:
        preview(engine, shoppers, phone=NAMELESS, coupon="5元")
    assert (missing.value.variable, missing.value.code) == ("name", "missing_variable")
    assert "name" in missing.value.message and NAMELESS in missing.value.message
    # No coupon given: each recipient's own code will go there; the preview shows a
    # placeholder exactly as long.
    assert "专享########券" in preview(engine, shoppers).text


def test_a_fallback_fills_an_empty_field(engine: Engine, shoppers: Workspace) -> None:
    make(engine, shoppers)
    assert "】会员您好" in preview(engine, shoppers, phone=NAMELESS, coupon="5元").text


def test_profile_fields_and_custom_attributes_are_variables(
    engine: Engine, shoppers: Workspace
) -> None:
    body = (
        "{{ name }}{{ gender }}，{{ birthday }}生日快乐！{{ 会员等级 }}会员积分{{ points }}，"
        "{{ attributes['会员等级'] }}{% if 'VIP' in tags %}VIP{% endif %}"
        "{{ province }}{{ carrier }}"
    )
    make(engine, shoppers, name="生日", body=body, kind="service")
    text = preview(engine, shoppers, name="生日").text
    assert text == "【星河商城】张三先生，5月17日生日快乐！金卡会员积分1200，金卡VIP北京市中国移动"


def test_workspace_words_show_in_preview_and_check(engine: Engine, shoppers: Workspace) -> None:
    make(engine, shoppers)
    add_word(engine, workspace_id=shoppers.id, word="双11", severity=Severity.WARN, now=NOW)
    [hit] = preview(engine, shoppers, coupon="5元").hits
    assert (hit.word, hit.severity) == ("双11", Severity.WARN)
    checked = check_workspace_text(
        engine, workspace_id=shoppers.id, body="双 11来了", kind="service"
    )
    assert checked.text == "【星河商城】双 11来了" and [h.word for h in checked.hits] == ["双11"]


def test_a_link_must_be_a_web_address(engine: Engine, shoppers: Workspace) -> None:
    make(engine, shoppers, body="详情{{ link('javascript:alert(1)') }}")
    with pytest.raises(InvalidLink):
        preview(engine, shoppers)


def test_only_the_workspaces_own_contacts_and_templates(
    engine: Engine, shoppers: Workspace
) -> None:
    make(engine, shoppers)
    other, _ = create_workspace(engine, slug="other", name="别家")
    make(engine, other, signature="别家商城")
    with pytest.raises(NotFound, match="联系人"):
        preview(engine, other, coupon="5元")
    with pytest.raises(NotFound, match="联系人"):
        preview(engine, shoppers, phone="13700137000", coupon="5元")


ROW: dict[str, Any] = {
    "phone": "+8613800138000",
    "name": None,
    "gender": "female",
    "birthday": date(1990, 8, 15),
    "birthday_lunar": True,
    "province": "广东",
    "city": None,
    "carrier": "china_unicom",
    "attributes": {"city": "深圳", "name": "", "level": 3},
}


def test_contact_variables_prefer_profile_fields_over_attributes() -> None:
    variables = contact_variables(ROW)
    assert variables["phone"] == "13800138000"
    assert (variables["gender"], variables["birthday"]) == ("女士", "农历8月15日")
    assert (variables["carrier"], variables["province"]) == ("中国联通", "广东")
    # An empty profile field leaves an attribute's value; an empty attribute does not count.
    assert (variables["city"], variables["name"], variables["level"]) == ("深圳", None, 3)
    assert variables["tags"] == [] and variables["attributes"] == ROW["attributes"]
