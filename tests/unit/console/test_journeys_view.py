"""Journeys drawn as a flow and edited from the console's fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from echelon.console.journeys_view import Exit, edited, flow
from echelon.errors import InvalidInput
from echelon.journeys.builtins import BUILTINS
from echelon.journeys.models import definition_json, parse_journey


def _stored(key: str) -> dict[str, Any]:
    return definition_json(parse_journey(BUILTINS[key].definition))


def test_a_flow_has_every_step_its_exits_and_counts() -> None:
    steps = flow(
        _stored("welcome"),
        [{"step": "welcome", "entered": 10, "sent": 9, "blocked": {"opt_out": 1}, "exited": {}}],
    )
    assert [s.id for s in steps] == ["welcome", "day3", "bought", "tips", "done"]
    assert steps[0].exits == [Exit("next", "day3")]
    assert steps[1].span == {"days": 3} and steps[1].at == "10:00"
    assert steps[2].exits == [Exit("then", "done"), Exit("else", "tips")]
    assert steps[3].exits == [Exit("next", "done")]
    assert steps[4].exits == []
    assert steps[0].blocked == 1 and steps[0].counts["sent"] == 9
    assert steps[2].later == ["tips", "done"]


def test_a_split_shows_its_shares() -> None:
    split = flow(_stored("win_back"), [])[1]
    assert split.exits == [Exit("path", "wait3d", 50), Exit("path", "wait5d", 50)]


def test_the_last_steps_default_exit_is_the_end() -> None:
    last = flow(_stored("purchase_nudge"), [])[-1]
    assert last.exits == [Exit("next", None)]


def test_edits_change_timings_templates_targets_and_shares_only() -> None:
    welcome = _stored("welcome")
    before = copy.deepcopy(welcome)
    changed = edited(
        welcome,
        {
            "s.welcome.template": "欢迎-改版",
            "s.day3.days": "2",
            "s.day3.hours": "6",
            "s.day3.at": "09:30",
            "s.bought.then": "",
            "s.bought.else": "done",
            "name": "ignored",
        },
    )
    assert welcome == before  # a copy is edited
    steps = {s["id"]: s for s in changed["steps"]}
    assert steps["welcome"]["template"] == "欢迎-改版"
    assert (steps["day3"]["days"], steps["day3"]["hours"], steps["day3"]["at"]) == (2, 6, "09:30")
    assert "then" not in steps["bought"] and steps["bought"]["else"] == "done"
    assert steps["bought"]["if"] == before["steps"][2]["if"]
    parse_journey(changed)

    win_back = edited(
        _stored("win_back"),
        {"s.delay.percent.0": "30", "s.delay.percent.1": "70", "s.wait3d.window": "1"},
    )
    assert [p["percent"] for p in win_back["steps"][1]["paths"]] == [30, 70]
    assert win_back["steps"][2]["window"] is True
    parse_journey(win_back)


def test_an_edit_can_clear_a_time_and_the_window() -> None:
    cart = edited(_stored("cart_abandonment"), {"s.wait24h.hours": "12", "s.wait24h.at": ""})
    wait = cart["steps"][0]
    assert wait["hours"] == 12 and "window" not in wait and "at" not in wait


def test_a_bad_number_names_the_step() -> None:
    with pytest.raises(InvalidInput, match="day3"):
        edited(_stored("welcome"), {"s.day3.days": "三"})
