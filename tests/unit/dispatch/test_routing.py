"""Routing rules: coverage, priority, exact weighted spread, failover."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from echelon.dispatch.routing import ALL, Routable, Route, Router
from echelon.dispatch.settings import DispatchSettings

MOBILE, UNICOM = "china_mobile", "china_unicom"


def route(channel_id: int, *carriers: str, weight: int = 1, priority: int = 0) -> Route:
    return Route(channel_id, 1, frozenset(carriers or ("all",)), weight, priority)


def message(
    i: int, carrier: str | None = MOBILE, last: int | None = None, tries: int = 0
) -> Routable:
    return Routable(i, 1, carrier, last, tries)


@given(
    weights=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    rounds=st.integers(1, 5),
)
def test_a_batch_is_spread_exactly_by_weight(weights: list[int], rounds: int) -> None:
    router = Router([route(i + 1, weight=w) for i, w in enumerate(weights)])
    size = sum(weights) * rounds
    chosen = router.route([message(i) for i in range(size)])
    assert Counter(chosen.values()) == {i + 1: w * rounds for i, w in enumerate(weights)}


@given(batches=st.lists(st.integers(1, 7), min_size=1, max_size=20))
def test_small_batches_keep_the_proportion_across_batches(batches: list[int]) -> None:
    router = Router([route(1, weight=3), route(2, weight=1)])
    seen: Counter[int | None] = Counter()
    start = 0
    for size in batches:
        seen.update(router.route([message(start + i) for i in range(size)]).values())
        start += size
    assert abs(seen[1] - 3 * seen[2]) <= 3  # never more than one round apart


def test_only_channels_covering_the_carrier_and_the_best_priority_take_it() -> None:
    router = Router(
        [
            route(1, UNICOM),
            route(2, MOBILE, priority=1),
            route(3, priority=2),
            route(4, MOBILE, priority=1),
        ]
    )
    chosen = router.route([message(i) for i in range(4)] + [message(9, UNICOM)])
    assert {chosen[i] for i in range(4)} == {2, 4}
    assert chosen[9] == 1


def test_an_unknown_carrier_goes_only_to_channels_for_all() -> None:
    router = Router([route(1, MOBILE), route(2)])
    assert router.route([message(1, None)]) == {1: 2}
    assert Router([route(1, MOBILE)]).route([message(1, None)]) == {1: None}


def test_failover_leaves_the_last_channel_after_enough_failures() -> None:
    router = Router([route(1), route(2, priority=1)], failover_after=2)
    assert router.route([message(1, last=1, tries=1)]) == {1: 1}  # retry on the best one
    assert router.route([message(1, last=1, tries=2)]) == {1: 2}  # then the next
    alone = Router([route(1)], failover_after=2)
    assert alone.route([message(1, last=1, tries=5)]) == {1: 1}  # nowhere else to go


def test_other_workspaces_channels_are_never_used() -> None:
    router = Router([Route(1, 2, frozenset({"all"}), 1, 0)])
    assert router.route([message(1)]) == {1: None}


@given(attempts=st.integers(1, 30))
def test_retry_delays_double_up_to_the_cap(attempts: int) -> None:
    settings = DispatchSettings(retry_base_seconds=2, retry_max_seconds=60)
    delay = settings.retry_delay(attempts)
    assert delay == min(60, 2 * 2 ** (attempts - 1))
    assert settings.retry_delay(attempts + 1) >= delay


def test_auto_replies_match_folded_text() -> None:
    settings = DispatchSettings.model_validate(
        {
            "auto_replies": [
                {"keyword": "营业时间", "reply": "10:00-22:00"},
                {"keyword": "HOURS", "reply": "10-22"},
            ]
        }
    )
    assert settings.answer_to("请问周末营业时间？") == "10:00-22:00"
    assert settings.answer_to("opening ｈｏｕｒｓ please") == "10-22"
    assert settings.answer_to("谢谢") is None


def test_a_message_keeps_its_channel_until_it_earns_a_failover() -> None:
    """A channel set at planning (a variant's preference) or a retry stays put, even
    against a better priority, until ``failover_after`` failures there."""
    router = Router(
        [
            Route(1, 1, frozenset({ALL}), weight=1, priority=0),
            Route(2, 1, frozenset({ALL}), weight=1, priority=5),
        ],
        failover_after=2,
    )
    chosen = router.route(
        [
            Routable(10, 1, "移动", last_channel_id=2, attempts_on_last=0),
            Routable(11, 1, "移动", last_channel_id=2, attempts_on_last=1),
            Routable(12, 1, "移动", last_channel_id=2, attempts_on_last=2),
            Routable(13, 1, "移动", last_channel_id=None, attempts_on_last=0),
            Routable(14, 1, "移动", last_channel_id=99, attempts_on_last=0),  # not up here
        ]
    )
    assert chosen == {10: 2, 11: 2, 12: 1, 13: 1, 14: 1}
