"""The journey definition: what it accepts, how it is stored, and errors that name the
place in the document and what is wrong."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest

from echelon.journeys.builtins import BUILTINS, BuiltinNotFound, get_builtin
from echelon.journeys.models import (
    BranchStep,
    InvalidJourney,
    Matches,
    definition_json,
    parse_journey,
)

SIGNUP = {"type": "event", "event": "signup"}


def steps(*items: dict[str, Any]) -> dict[str, Any]:
    return {"trigger": SIGNUP, "steps": list(items)}


@pytest.mark.parametrize("key", sorted(BUILTINS))
def test_every_builtin_is_valid_and_reads_back_equal(key: str) -> None:
    parsed = parse_journey(BUILTINS[key].definition)
    stored = definition_json(parsed)
    assert parse_journey(stored) == parsed
    assert set(parsed.templates()) == {t.name for t in BUILTINS[key].templates}


def test_builtins_are_found_by_key_or_name() -> None:
    assert get_builtin("购物车挽回").key == "cart_abandonment"
    with pytest.raises(BuiltinNotFound, match="welcome"):
        get_builtin("nope")


def test_stored_form_is_canonical_and_short() -> None:
    parsed = parse_journey(
        {
            "trigger": {"type": "event", "event": "加购"},
            "steps": [{"id": "w", "type": "wait", "hours": 24, "at": "10:00", "window": False}],
        }
    )
    assert definition_json(parsed) == {
        "version": 1,
        "trigger": {"type": "event", "event": "cart_add"},
        "reentry": {"policy": "once"},
        "steps": [{"id": "w", "type": "wait", "hours": 24, "at": "10:00"}],
    }
    assert parsed.steps[0].at == time(10, 0)  # type: ignore[union-attr]


def test_stored_steps_read_id_and_type_first_and_conditions_stay_short() -> None:
    parsed = parse_journey(
        {
            "trigger": {"type": "event", "event": "signup"},
            "steps": [
                {"type": "wait", "days": 3, "id": "w"},
                {"id": "b", "type": "branch", "if": {"kind": "converted"}, "then": "x"},
                {"id": "x", "type": "exit"},
            ],
        }
    )
    stored = definition_json(parsed)
    assert [list(step)[:2] for step in stored["steps"]] == [["id", "type"]] * 3
    assert stored["steps"][1]["if"] == {"kind": "converted", "event": "purchase"}
    assert parse_journey(stored) == parsed


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            steps({"id": "a", "type": "send"}),
            "定义 › steps › 第 1 步（a） › template：缺少这一项",
        ),
        (
            {"trigger": {"type": "evnt"}, "steps": []},
            "定义 › trigger：未知的类型「evnt」",
        ),
        (steps(), "定义 › steps：至少需要 1 项"),
        (
            steps({"id": "a", "type": "sned"}),
            "定义 › steps › 第 1 步（a）：未知的类型「sned」",
        ),
        (
            steps({"id": "a", "type": "send", "template": "t", "next": "b"}),
            "第 1 步（a）跳到的步骤「b」不存在",
        ),
        (
            steps(
                {"id": "a", "type": "send", "template": "t"},
                {"id": "b", "type": "send", "template": "t", "next": "a"},
            ),
            "第 2 步（b）只能跳到它后面的步骤，不能跳回「a」",
        ),
        (
            steps({"id": "a", "type": "exit"}, {"id": "a", "type": "exit"}),
            "第 2 步的 id「a」与前面的步骤重复",
        ),
        (steps({"id": "有 空格", "type": "exit"}), "id：只能由字母、数字、汉字、_ 和 - 组成"),
        (
            steps({"id": "w", "type": "wait"}),
            "wait 须给出 days/hours/minutes、at、weekday 或 window",
        ),
        (steps({"id": "w", "type": "wait", "days": -1}), "第 1 步（w） › days：须 ≥ 0"),
        (
            steps({"id": "w", "type": "wait", "at": "25:00"}),
            "第 1 步（w） › at：应为时刻，如 10:00",
        ),
        (
            steps({"id": "w", "type": "wait_for", "click": True, "event": "purchase", "days": 1}),
            "wait_for 须给出 event（等待的事件）或",
        ),
        (steps({"id": "w", "type": "wait_for", "click": True}), "须给出最长等待时间"),
        (
            steps({"id": "b", "type": "branch", "if": {"kind": "clicked"}}),
            "branch 须给出 then 和/或 else",
        ),
        (
            steps({"id": "b", "type": "branch", "if": {"kind": "liked"}, "then": "b"}),
            "第 1 步（b） › if：未知的类型「liked」",
        ),
        (
            steps(
                {
                    "id": "b",
                    "type": "branch",
                    "if": {"kind": "condition", "condition": {"kind": "segment", "segment": 1}},
                    "else": "c",
                },
                {"id": "c", "type": "exit"},
            ),
            "条件里不能引用分群",
        ),
        (
            steps(
                {
                    "id": "s",
                    "type": "split",
                    "paths": [{"percent": 50, "next": "x"}, {"percent": 40, "next": "x"}],
                },
                {"id": "x", "type": "exit"},
            ),
            "各路径 percent 之和须为 100，现为 90",
        ),
        (
            {
                "trigger": SIGNUP,
                "reentry": {"policy": "once_per"},
                "steps": [{"id": "a", "type": "exit"}],
            },
            "定义 › reentry：once_per 须给出 days",
        ),
        (
            {
                "trigger": {"type": "holiday", "holiday": "圣诞节"},
                "steps": [{"id": "a", "type": "exit"}],
            },
            "定义 › trigger › holiday：节假日「圣诞节」未知，可用：元旦、春节",
        ),
        (
            {
                "trigger": {"type": "date", "field": "birthday", "attribute": "x"},
                "steps": [{"id": "a", "type": "exit"}],
            },
            "attribute 只用于 anniversary",
        ),
        (
            {
                "trigger": {"type": "event", "event": "坏 名字"},
                "steps": [{"id": "a", "type": "exit"}],
            },
            "定义 › trigger › event：事件类型 的值 '坏 名字' 无法识别",
        ),
    ],
)
def test_errors_name_the_place_and_the_problem(document: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJourney) as raised:
        parse_journey(document)
    assert raised.value.message.startswith("旅程定义有误：")
    assert message in raised.value.message


def test_holidays_and_events_are_read_the_way_people_write_them() -> None:
    parsed = parse_journey(
        {
            "trigger": {"type": "holiday", "holiday": "中秋", "offset_days": -3},
            "steps": [{"id": "a", "type": "exit"}],
        }
    )
    assert parsed.trigger.holiday == "中秋节"  # type: ignore[union-attr]
    assert parsed.trigger.calendar_name == "Mid-autumn Festival"  # type: ignore[union-attr]


def test_a_condition_is_a_segment_definition() -> None:
    parsed = parse_journey(
        steps(
            {
                "id": "b",
                "type": "branch",
                "if": {"kind": "condition", "condition": {"kind": "gender", "value": "女"}},
                "then": "x",
            },
            {"id": "x", "type": "exit"},
        )
    )
    branch = parsed.step("b")
    assert isinstance(branch, BranchStep) and isinstance(branch.condition, Matches)
    assert branch.condition.node.value == "female"  # type: ignore[union-attr]
    assert parsed.following("b") == "x" and parsed.following("x") is None


def test_segments_named_anywhere_are_resolved_to_ids() -> None:
    parsed = parse_journey(
        {
            "trigger": {"type": "date", "field": "birthday", "segment": "贵宾"},
            "steps": [
                {
                    "id": "b",
                    "type": "branch",
                    "if": {"kind": "segment", "segment": "金卡"},
                    "then": "x",
                },
                {"id": "x", "type": "exit"},
            ],
        }
    )
    assert parsed.segments() == ["贵宾", "金卡"]
    resolved = parsed.with_segment_ids({"贵宾": 3, "金卡": 4})
    assert resolved.segments() == [3, 4]
