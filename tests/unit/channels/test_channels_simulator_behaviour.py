"""The simulator's decisions: deterministic rules first, then seeded shares."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from echelon.channels.simulator.behaviour import Behaviour
from echelon.channels.simulator.models import (
    LogNormalDelay,
    SimulatorConfig,
    StatusShare,
)


def behaviour(**settings: object) -> Behaviour:
    config = SimulatorConfig.model_validate({"seed": 1, **settings})
    return Behaviour(config, random.Random(1))


def test_rules_by_destination() -> None:
    sim = behaviour(
        reject_suffixes={"0000": "0x0B"},
        empty_suffixes=["4444"],
        empty_numbers=["8613900000001"],
        reply_suffixes={"77": "退订"},
        delivery_success_ratio=1.0,
    )
    assert sim.on_submit("8613800000000", want_receipt=True, first_part=True).status == 0x0B
    for empty in ("8613800004444", "8613900000001"):
        decision = sim.on_submit(empty, want_receipt=True, first_part=True)
        assert decision.receipt is not None
        assert (decision.receipt.stat, decision.receipt.err) == ("UNDELIV", "MK:0001")
        assert decision.reply is None  # an empty number never answers
    replied = sim.on_submit("8613800000077", want_receipt=True, first_part=True)
    assert replied.reply is not None
    assert replied.reply.text == "退订"
    assert sim.on_submit("8613800000077", want_receipt=True, first_part=False).reply is None
    assert sim.on_submit("8613800000001", want_receipt=False, first_part=True).receipt is None


def test_shares_follow_the_config() -> None:
    sim = behaviour(
        submit_errors=[StatusShare(status=0x58, share=0.1)],
        delivery_success_ratio=0.8,
        reply_share=0.05,
    )
    decisions = [sim.on_submit("8613800138000", want_receipt=True, first_part=True)
                 for _ in range(20_000)]  # fmt: skip
    throttled = sum(d.status == 0x58 for d in decisions) / len(decisions)
    accepted = [d for d in decisions if d.status == 0]
    delivered = sum(d.receipt is not None and d.receipt.stat == "DELIVRD" for d in accepted)
    replies = sum(d.reply is not None for d in accepted)
    assert 0.09 < throttled < 0.11
    assert 0.78 < delivered / len(accepted) < 0.82
    assert 0.04 < replies / delivered < 0.06


def test_lognormal_delay_has_the_configured_median_and_p95() -> None:
    sim = behaviour()
    delays = sorted(sim.delay(LogNormalDelay(median_ms=100, p95_ms=1000)) for _ in range(20_000))
    assert 0.09 < delays[len(delays) // 2] < 0.11
    assert 0.85 < delays[int(len(delays) * 0.95)] < 1.15


def test_config_accepts_hex_statuses_and_rejects_unknown_keys() -> None:
    config = SimulatorConfig.model_validate({"reject_suffixes": {"00": "0x58"}})
    assert config.reject_suffixes == {"00": 0x58}
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"no_such_setting": 1})
