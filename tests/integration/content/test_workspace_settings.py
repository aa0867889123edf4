"""Workspace content settings and workspace words on both databases; price plan specs."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest
from content_support import NOW
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from echelon.content.compose import InvalidOptOut, InvalidSignature
from echelon.content.plans import (
    DEFAULT_PRICE_PLAN,
    parse_peak,
    parse_price,
    parse_tiers,
    plan_from_json,
    plan_to_json,
)
from echelon.content.pricing import InvalidPricePlan, PeakSurcharge, PricePlan, Tier
from echelon.content.words import Category, InvalidWordEntry, Severity
from echelon.content.workspace_words import (
    SeverityDowngrade,
    WordNotListed,
    add_word,
    list_words,
    remove_word,
)
from echelon.db.tables import workspaces
from echelon.workspaces.service import Workspace, create_workspace, get_settings, update_settings

PLAN = PricePlan(
    price_per_part=Decimal("0.045"),
    tiers=(Tier(10_000, Decimal("0.05")), Tier(100_000, Decimal("0.0475"))),
    peak=PeakSurcharge(time(19, 30), time(1), Decimal("12.5")),
)


def test_a_new_workspace_starts_from_the_defaults(engine: Engine, workspace: Workspace) -> None:
    settings = get_settings(engine, workspace_id=workspace.id)
    assert (settings.signature, settings.opt_out_text) == (None, "拒收请回复R")
    assert (
        settings.price_plan
        == DEFAULT_PRICE_PLAN
        == PricePlan(
            price_per_part=Decimal("0.055"),
            tiers=(Tier(50_000, Decimal("0.06")),),
            peak=PeakSurcharge(time(20), time(21), Decimal("15")),
            timezone="Asia/Shanghai",
        )
    )


def test_settings_change_only_what_is_given(engine: Engine, workspace: Workspace) -> None:
    change = update_settings(
        engine, workspace_id=workspace.id, signature="星河商城", opt_out_text="回T退订"
    )
    assert change.changed == ("signature", "opt_out_text")
    change = update_settings(engine, workspace_id=workspace.id, price_plan=PLAN)
    assert change.changed == ("price_plan",)
    assert change.after == get_settings(engine, workspace_id=workspace.id)
    assert change.after.signature == "星河商城" and change.after.price_plan == PLAN
    unchanged = update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    assert unchanged.changed == () and unchanged.before == unchanged.after


def test_money_is_stored_as_decimal_strings(engine: Engine, workspace: Workspace) -> None:
    update_settings(engine, workspace_id=workspace.id, price_plan=PLAN)
    with engine.connect() as conn:
        stored = conn.execute(
            select(workspaces.c.price_plan).where(workspaces.c.id == workspace.id)
        ).scalar_one()
    assert stored["price_per_part"] == "0.045" and stored["tiers"][1]["price"] == "0.0475"
    assert stored["peak"] == {"start": "19:30", "end": "01:00", "percent": "12.5"}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"signature": "【星河】"}, InvalidSignature),
        ({"signature": "星"}, InvalidSignature),
        ({"signature": "星河商城", "opt_out_text": "回复STOP退订"}, InvalidOptOut),
    ],
)
def test_bad_settings_change_nothing(
    engine: Engine, workspace: Workspace, changes: dict[str, str], error: type[Exception]
) -> None:
    before = get_settings(engine, workspace_id=workspace.id)
    with pytest.raises(error):
        update_settings(engine, workspace_id=workspace.id, **changes)  # type: ignore[arg-type]
    assert get_settings(engine, workspace_id=workspace.id) == before


def test_workspace_words_are_one_per_folded_form(engine: Engine, workspace: Workspace) -> None:
    added, action = add_word(engine, workspace_id=workspace.id, word="秒杀", now=NOW)
    assert action == "added" and (added.category, added.severity) == (
        Category.CUSTOM,
        Severity.BLOCK,
    )
    assert add_word(engine, workspace_id=workspace.id, word="秒杀", now=NOW)[1] == "unchanged"
    updated, action = add_word(
        engine,
        workspace_id=workspace.id,
        word="秒 杀",
        severity=Severity.WARN,
        suggestion="限时优惠",
        now=NOW,
    )
    assert action == "updated" and updated.suggestion == "限时优惠"
    assert [(w.word, w.severity) for w in list_words(engine, workspace_id=workspace.id)] == [
        ("秒 杀", Severity.WARN)
    ]
    assert remove_word(engine, workspace_id=workspace.id, word="秒*杀").word == "秒 杀"
    assert list_words(engine, workspace_id=workspace.id) == []


def test_word_mistakes_are_refused(engine: Engine, workspace: Workspace) -> None:
    with pytest.raises(SeverityDowngrade):
        add_word(engine, workspace_id=workspace.id, word="国家级", severity=Severity.WARN, now=NOW)
    with pytest.raises(InvalidWordEntry):
        add_word(engine, workspace_id=workspace.id, word=" ** ", now=NOW)
    with pytest.raises(WordNotListed, match="系统词库"):
        remove_word(engine, workspace_id=workspace.id, word="国家级")
    assert list_words(engine, workspace_id=workspace.id) == []


def test_words_belong_to_their_workspace(engine: Engine, workspace: Workspace) -> None:
    other, _ = create_workspace(engine, slug="other", name="别家")
    add_word(engine, workspace_id=workspace.id, word="秒杀", now=NOW)
    assert list_words(engine, workspace_id=other.id) == []
    with pytest.raises(WordNotListed):
        remove_word(engine, workspace_id=other.id, word="秒杀")


PRICES = st.decimals(min_value=0, max_value=10, places=4)
CLOCKS = st.times().map(lambda t: t.replace(microsecond=0))
PEAKS = st.tuples(CLOCKS, CLOCKS, st.decimals(min_value=0, max_value=1000, places=2))


@st.composite
def plans(draw: st.DrawFn) -> PricePlan:
    bounds = sorted(draw(st.sets(st.integers(1, 10_000_000), max_size=4)))
    return PricePlan(
        price_per_part=draw(PRICES),
        tiers=tuple(Tier(bound, draw(PRICES)) for bound in bounds),
        peak=draw(
            st.none() | PEAKS.filter(lambda p: p[0] != p[1]).map(lambda p: PeakSurcharge(*p))
        ),
    )


@given(plans())
def test_plans_round_trip_through_json_without_floats(plan: PricePlan) -> None:
    stored = plan_to_json(plan)
    assert plan_from_json(stored) == plan
    assert not any(isinstance(v, float) for v in _leaves(stored))


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


@pytest.mark.parametrize(
    ("specs", "tiers", "beyond"),
    [
        (["50000=0.06", "0.055"], (Tier(50_000, Decimal("0.06")),), Decimal("0.055")),
        (
            ["10,000=¥0.05", "100000=0.048元"],
            (Tier(10_000, Decimal("0.05")), Tier(100_000, Decimal("0.048"))),
            None,
        ),
        (["off"], (), None),
    ],
)
def test_tier_specs(specs: list[str], tiers: tuple[Tier, ...], beyond: Decimal | None) -> None:
    assert parse_tiers(specs) == (tiers, beyond)


@pytest.mark.parametrize(
    "bad",
    [["0.055", "50000=0.06"], ["50000=0.06", "10000=0.05"], ["lots=0.06"], ["50000=abc"]],
)
def test_bad_tier_specs(bad: list[str]) -> None:
    with pytest.raises(InvalidPricePlan):
        parse_tiers(bad)


def test_peak_and_price_specs() -> None:
    assert parse_peak("22:00-01:00=10%") == PeakSurcharge(time(22), time(1), Decimal("10"))
    assert parse_peak("off") is None
    for bad in ("20:00=15", "20:00-25:00=15", "晚上-21:00=15", "20:00-20:00=15"):
        with pytest.raises(InvalidPricePlan):
            parse_peak(bad)
    assert parse_price("￥0.06") == Decimal("0.06")
    with pytest.raises(InvalidPricePlan, match="文字"):
        parse_price(0.06)  # a float has already lost the exact amount
