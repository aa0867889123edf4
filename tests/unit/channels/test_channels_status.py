"""Status classification (data) and how parts add up to one outcome."""

from __future__ import annotations

import asyncio

import pytest

from echelon.channels.base import (
    LOCAL_STATUS,
    SMPP_STATUS,
    OutboundSms,
    SubmitOutcome,
    classify_status,
    from_json,
    to_json,
)
from echelon.channels.batch import Batch


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(0x58, True), (0x14, True), (0x08, True), (0x45, True), (0x64, True),
     (0x0B, False), (0x0A, False), (0x01, False), (0x66, False), (0x400, False)],
)  # fmt: skip
def test_classification(status: int, retryable: bool) -> None:
    assert classify_status(status).retryable is retryable


def test_overrides_flip_retryability_but_keep_the_name() -> None:
    got = classify_status(0x0B, {0x0B: True, 0x401: True})
    assert (got.name, got.retryable) == ("ESME_RINVDSTADR", True)
    assert classify_status(0x401, {0x401: True}).retryable


def test_unknown_local_outcomes_are_never_retryable() -> None:
    assert not LOCAL_STATUS["connection_lost"].retryable
    assert not LOCAL_STATUS["response_timeout"].retryable
    assert LOCAL_STATUS["not_connected"].retryable
    assert all(name.startswith("ESME_") for name in (c.name for c in SMPP_STATUS.values()))


def outcomes(parts: list[list[tuple[str, object]]]) -> list[SubmitOutcome]:
    """Feed scripted part results through a Batch; ('ok', id) ('smpp', st) ('lost', code)."""

    async def go() -> list[SubmitOutcome]:
        batch = Batch([OutboundSms(n, "+8613800138000", "x") for n in range(len(parts))])
        for index, results in enumerate(parts):
            batch.expect(index, len(results))
            for part, (kind, value) in enumerate(results):
                if kind == "not_sent":
                    batch.not_sent(index, part, str(value))
                    continue
                batch.sent()
                if kind == "ok":
                    batch.accept(index, part, str(value))
                elif kind == "smpp":
                    batch.reject(index, part, int(str(value)))
                else:
                    batch.lost(index, part, str(value))
        await batch.wait()
        return batch.outcomes()

    return asyncio.run(go())


def test_all_parts_accepted() -> None:
    [got] = outcomes([[("ok", "a"), ("ok", "b")]])
    assert (got.ok, got.provider_id, got.provider_ids, got.parts) == (True, "a", ("a", "b"), 2)


def test_lost_part_makes_the_message_unknown_not_retryable() -> None:
    [got] = outcomes([[("ok", "a"), ("lost", "connection_lost")]])
    assert (got.ok, got.unknown, got.retryable) == (False, True, False)
    assert got.error_code == "connection_lost"
    assert got.provider_ids == ("a",)  # its receipt may still reconcile it


def test_partial_acceptance_is_permanent() -> None:
    [got] = outcomes([[("ok", "a"), ("smpp", 0x58)]])
    assert (got.ok, got.retryable, got.error_code) == (False, False, "partially_accepted")
    assert got.reason is not None
    assert "ESME_RTHROTTLED" in got.reason


def test_throttled_is_retryable_and_a_permanent_refusal_wins() -> None:
    throttled, mixed, not_sent = outcomes(
        [[("smpp", 0x58)], [("smpp", 0x58), ("smpp", 0x0B)], [("not_sent", "not_connected")]]
    )
    assert (throttled.retryable, throttled.error_code) == (True, "ESME_RTHROTTLED")
    assert (mixed.retryable, mixed.error_code) == (False, "ESME_RINVDSTADR")
    assert (not_sent.retryable, not_sent.unknown) == (True, False)


def test_values_round_trip_through_json() -> None:
    [got] = outcomes([[("ok", "a"), ("ok", "b")]])
    assert from_json(SubmitOutcome, to_json(got)) == got
