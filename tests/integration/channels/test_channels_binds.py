"""A channel over several binds of one account (``binds``) against the simulator."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from channels_support import Inbox, channel_config, run, sim_config

from echelon.channels.base import BindFailed, OutboundSms
from echelon.channels.binds import SmppBinds
from echelon.channels.simulator import SimulatorProcess, free_port
from echelon.channels.smpp import SmppConfig

StartSim = Callable[..., SimulatorProcess]
LONG = "【回声】" + "会员日全场八折，" * 18 + "回T退订"  # 3 UCS-2 parts


def test_a_batch_is_shared_by_the_binds_and_receipts_from_any_reach_one_sink(
    start_sim: StartSim,
) -> None:
    sim = start_sim(sim_config(response_delay_ms=20, record_messages=True))

    async def scenario() -> None:
        inbox = Inbox()
        told: list[tuple[int, str]] = []
        channel = SmppBinds(
            channel_config(sim, window=4),
            inbox,
            binds=3,
            on_accepted=lambda *pair: told.append(pair),
        )
        await channel.start()
        batch = [OutboundSms(n, f"+86138001{n + 1:05d}", "验证码 123456") for n in range(59)]
        batch.append(OutboundSms(59, "+8613800199999", LONG))
        outcomes = await channel.submit_many(batch)
        assert [o.message_id for o in outcomes] == list(range(60))
        assert all(o.ok for o in outcomes)
        assert outcomes[-1].parts == 3
        assert sorted(told) == sorted((o.message_id, str(o.provider_id)) for o in outcomes)
        # Each session took its third of the batch (the long message's three parts
        # went out together on the last one).
        assert [s.health().submitted_parts for s in channel.sessions] == [20, 20, 22]
        await inbox.wait_for(lambda: len(inbox.receipts) == 62)
        health = channel.health()
        assert (health.state, health.window, health.receipts) == ("bound", 12, 62)
        assert (health.submitted_parts, health.accepted_parts) == (62, 62)
        assert (health.counters["binds"], health.counters["binds_bound"]) == (3, 3)
        await channel.close()
        assert channel.health().state == "closed"

    run(scenario())
    stats = sim.stop()
    assert (stats.binds, stats.accepted, stats.max_outstanding) == (3, 62, 4)
    assert {m.text for m in stats.messages if m.parts == 3} == {LONG}


def test_the_accounts_tps_is_shared_by_its_binds(start_sim: StartSim) -> None:
    sim = start_sim()

    async def scenario() -> float:
        channel = SmppBinds(channel_config(sim, tps=100, tps_burst=6), Inbox(), binds=2)
        await channel.start()
        started = time.monotonic()
        outcomes = await channel.submit_many(
            [OutboundSms(n, "+8613800138000", "hi") for n in range(56)]
        )
        elapsed = time.monotonic() - started
        assert all(o.ok for o in outcomes)
        await channel.close()
        return elapsed

    # Each bind: 50 a second, a burst of 3; 28 each: 3 at once, 25 more in 0.5 s. Two
    # binds each at the whole account's 100 a second would take a quarter second.
    assert run(scenario()) >= 0.49


def test_a_failed_bind_fails_the_start_and_says_which() -> None:
    async def scenario() -> None:
        config = SmppConfig(host="127.0.0.1", port=free_port(), system_id="x", password="y")
        channel = SmppBinds(config, Inbox(), binds=2)
        with pytest.raises(BindFailed, match=r"bind 1 of 2 failed \(2 failed in all\).*connect"):
            await channel.start()
        assert [s.state for s in channel.sessions] == ["idle", "idle"]

    run(scenario())
