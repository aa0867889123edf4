"""A sink may defer the SMSC's ack until it has stored what it got (``InboundSink``):
the ack follows the future; a failed future asks the SMSC to deliver it again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from channels_support import channel_config, run, sim_config

from echelon.channels.base import Inbound, OutboundSms, Receipt
from echelon.channels.simulator import SimulatorProcess
from echelon.channels.smpp import SmppChannel

StartSim = Callable[..., SimulatorProcess]


def test_a_deferred_ack_waits_for_the_sink_and_a_failed_one_is_delivered_again(
    start_sim: StartSim,
) -> None:
    sim = start_sim(sim_config())
    seen: list[tuple[str, asyncio.Future[None]]] = []

    def sink(item: Inbound) -> asyncio.Future[None]:
        assert isinstance(item, Receipt)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        seen.append((item.provider_id, future))
        return future

    async def scenario() -> None:
        channel = SmppChannel(channel_config(sim), sink)
        await channel.start()
        (outcome,) = await channel.submit_many([OutboundSms(1, "+8613800138001", "您好")])
        assert outcome.ok
        while not seen:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        assert len(seen) == 1  # unacknowledged: the SMSC waits, it does not resend yet
        seen[0][1].set_exception(RuntimeError("database down"))  # not stored: deliver again
        while len(seen) < 2:
            await asyncio.sleep(0.01)
        assert seen[1][0] == seen[0][0] == outcome.provider_id
        seen[1][1].set_result(None)  # stored: acknowledged
        await asyncio.sleep(1.5)
        assert len(seen) == 2  # acknowledged once, never again
        await channel.close()

    run(scenario())
    stats = sim.stop()
    assert stats.receipts_sent == 2
    assert stats.receipts_failed == 1
    assert stats.redelivered == 1
