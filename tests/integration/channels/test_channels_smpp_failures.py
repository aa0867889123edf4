"""SmppChannel when things go wrong: lost links, crashes, timeouts, odd SMSC PDUs."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest
from channels_support import Inbox, channel_config, eventually, run, sim_config

from echelon.channels.base import BindFailed, Inbound, OutboundSms, Receipt
from echelon.channels.simulator import SimulatorProcess, free_port
from echelon.channels.smpp import SmppChannel, SmppConfig

StartSim = Callable[..., SimulatorProcess]
HEADER = struct.Struct("!IIII")


def batch(count: int, *, want_receipt: bool = False) -> list[OutboundSms]:
    return [
        OutboundSms(n, "+8613800138000", f"第{n}条", want_receipt=want_receipt)
        for n in range(count)
    ]


def test_smsc_unbind_mid_batch_reports_unknown_and_reconnects(start_sim: StartSim) -> None:
    # The simulator unbinds at every 5th submit of a session, holding that submit.
    sim = start_sim(sim_config(disconnect_every=5))

    async def scenario() -> None:
        channel = SmppChannel(channel_config(sim, window=1), Inbox())
        await channel.start()
        outcomes = await channel.submit_many(batch(7))
        assert [o.ok for o in outcomes] == [True, True, True, True, False, True, True]
        lost = outcomes[4]
        assert (lost.unknown, lost.retryable, lost.error_code) == (True, False, "connection_lost")
        assert lost.reason == "connection lost before response"
        assert channel.health().reconnects == 1
        await channel.close()

    run(scenario())
    stats = sim.stop()
    assert (stats.disconnects, stats.binds, stats.submits) == (1, 2, 7)


def test_smsc_crash_and_restart_reconnects_with_backoff(start_sim: StartSim) -> None:
    holding = start_sim(sim_config(response_delay_ms=60_000))  # answers nothing in time

    async def scenario() -> None:
        config = channel_config(
            holding, window=10, reconnect_initial=0.2, reconnect_max=0.8, bind_wait=0.3
        )
        channel = SmppChannel(config, Inbox())
        await channel.start()
        pending = asyncio.create_task(channel.submit_many(batch(3)))
        await eventually(lambda: channel.health().outstanding == 3)
        holding.kill()  # SIGKILL: the TCP connection is reset, no unbind
        outcomes = await pending
        assert all(o.unknown and not o.retryable for o in outcomes)
        assert {o.error_code for o in outcomes} == {"connection_lost"}

        # While the SMSC is down, submits wait bind_wait, then come back retryable.
        assert channel.health().state == "connecting"
        [down] = await channel.submit_many(batch(1))
        assert (down.error_code, down.retryable, down.unknown) == ("not_connected", True, False)

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, start_sim, sim_config(), holding.port)
        assert await channel.wait_bound(10)
        health = channel.health()
        assert health.reconnects == 1
        assert health.last_error is not None
        assert "cannot connect" in health.last_error
        again = await channel.submit_many(batch(2))
        assert all(o.ok for o in again)
        await channel.close()

    run(scenario())


def test_response_timeout_is_unknown(start_sim: StartSim) -> None:
    sim = start_sim(sim_config(response_delay_ms=3_000))

    async def scenario() -> None:
        channel = SmppChannel(channel_config(sim, response_timeout=0.3), Inbox())
        await channel.start()
        [outcome] = await channel.submit_many(batch(1))
        assert (outcome.unknown, outcome.retryable) == (True, False)
        assert outcome.error_code == "response_timeout"
        assert channel.health().outstanding == 0  # its window permit came back
        await channel.close()

    run(scenario())


def test_sustained_receipt_load_loses_nothing(start_sim: StartSim) -> None:
    # smpp34's own client failed every pending submit with ESME_RSYSERR after ~5,000
    # messages under this load; that is why SmppChannel runs its own session.
    sim = start_sim(sim_config())
    count = 6_000

    async def scenario() -> None:
        inbox = Inbox()
        channel = SmppChannel(channel_config(sim, window=100), inbox)
        await channel.start()
        outcomes = await channel.submit_many(batch(count, want_receipt=True))
        assert all(o.ok for o in outcomes)
        await inbox.wait_for(lambda: len(inbox.receipts) == count, timeout=30)
        ids = {o.provider_id for o in outcomes}
        assert len(ids) == count
        assert {r.provider_id for r in inbox.receipts} == ids
        await channel.close()

    run(scenario())
    stats = sim.stop()
    assert (stats.accepted, stats.receipts_sent, stats.receipts_failed) == (count, count, 0)


class ScriptedSmsc:
    """A TCP peer that binds the client, then plays SMSC-originated PDUs at it."""

    def __init__(self) -> None:
        self.answers: asyncio.Queue[tuple[int, int, int]] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self.bound = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        while True:
            try:
                header = await reader.readexactly(16)
            except asyncio.IncompleteReadError:
                return
            length, command, status, sequence = HEADER.unpack(header)
            await reader.readexactly(length - 16)
            if command == 0x09:
                body = b"SCRIPT\x00"
                writer.write(HEADER.pack(16 + len(body), 0x80000009, 0, sequence) + body)
                self.bound.set()
            elif command == 0x06:  # the client's own unbind, on close
                writer.write(HEADER.pack(16, 0x80000006, 0, sequence))
            else:
                await self.answers.put((command, status, sequence))

    def send(self, command: int, sequence: int, body: bytes = b"") -> None:
        assert self.writer is not None
        self.writer.write(HEADER.pack(16 + len(body), command, 0, sequence) + body)


def deliver_sm_body(text: bytes, esm_class: int = 0) -> bytes:
    return (
        b"\x00" + b"\x01\x01" + b"8613800138000\x00" + b"\x00\x00" + b"1069\x00"
        + bytes([esm_class, 0, 0]) + b"\x00\x00" + bytes([0, 0, 0, 0, len(text)]) + text
    )  # fmt: skip


def test_smsc_originated_pdus_are_answered() -> None:
    async def scenario() -> None:
        smsc = ScriptedSmsc()
        server = await asyncio.start_server(smsc.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        failures = 0

        def flaky_sink(item: Inbound) -> None:
            nonlocal failures
            if isinstance(item, Receipt) and failures == 0:
                failures += 1
                raise RuntimeError("database is down")

        config = SmppConfig(host="127.0.0.1", port=port, system_id="x", password="y")
        channel = SmppChannel(config, flaky_sink)
        await channel.start()
        await smsc.bound.wait()

        smsc.send(0x15, 7001)  # enquire_link from the SMSC
        assert await smsc.answers.get() == (0x80000015, 0, 7001)
        smsc.send(0x99, 7002)  # a command we do not know
        assert await smsc.answers.get() == (0x80000000, 0x03, 7002)
        smsc.send(0x05, 7003, b"\x00\x01")  # a truncated deliver_sm
        assert await smsc.answers.get() == (0x80000005, 0x65, 7003)
        receipt = deliver_sm_body(b"id:42 stat:DELIVRD err:000", esm_class=0x04)
        smsc.send(0x05, 7004, receipt)  # the sink raises: ask for redelivery
        assert await smsc.answers.get() == (0x80000005, 0x64, 7004)
        smsc.send(0x05, 7005, receipt)  # redelivered: now taken
        assert await smsc.answers.get() == (0x80000005, 0x00, 7005)
        smsc.send(0x06, 7006)  # the SMSC unbinds: acknowledged, then reconnect
        assert await smsc.answers.get() == (0x80000006, 0, 7006)
        await eventually(lambda: channel.health().reconnects == 1)
        health = channel.health()
        assert (health.malformed_inbound, health.receipts, health.counters["sink_errors"]) == (
            1, 2, 1,
        )  # fmt: skip
        await channel.close()
        server.close()
        await server.wait_closed()

    run(scenario())


def test_bind_refused_by_smsc_is_reported() -> None:
    async def scenario() -> None:
        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            _, command, _, sequence = HEADER.unpack(await reader.readexactly(16))
            writer.write(HEADER.pack(16, command | 0x80000000, 0x0E, sequence))

        server = await asyncio.start_server(refuse, "127.0.0.1", free_port())
        port = server.sockets[0].getsockname()[1]
        channel = SmppChannel(
            SmppConfig(host="127.0.0.1", port=port, system_id="x", password="bad"), Inbox()
        )
        with pytest.raises(BindFailed, match="ESME_RINVPASWD"):
            await channel.start()
        server.close()
        await server.wait_closed()

    run(scenario())
