"""SMPP throughput with receipts on: the ceiling on this machine, and our channel's share.

    python bench/bench_smpp.py                 # 200,000 messages each run
    python bench/bench_smpp.py --count 10000   # CI smoke

Each run starts a fresh simulator (smpp34 server, every message gets a receipt) and
times from the first submit until the last receipt has arrived:

(a) ceiling — a bare client: smpp34 encodes submit_sm, everything else is a counter;
    no correlation, no outcome objects, receipts acknowledged without decoding;
(b) ``SmppChannel`` — the real client: window, TPS bucket (off), outcomes, receipt
    parsing into ``Receipt`` values handed to a sink.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import sys
import time
from collections.abc import Callable

import smpp34

from echelon.channels.base import Inbound, OutboundSms, Receipt
from echelon.channels.simulator import LogNormalDelay, SimulatorConfig, SimulatorProcess
from echelon.channels.smpp import SmppChannel, SmppConfig

HEADER = struct.Struct("!IIII")
DESTINATION = "8613800138000"
TEXT = "【回声】会员日全场8折，回T退订"


class BareClient(asyncio.Protocol):
    """The least an ESME must do: bind, keep ``window`` submits in flight, ack receipts."""

    def __init__(self, count: int, window: int) -> None:
        loop = asyncio.get_running_loop()
        self.count, self.window = count, window
        self.sent = self.answered = self.receipts = self.refused = 0
        self.sequence = 1
        self.buffer = bytearray()
        self.bound: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        payload = TEXT.encode("utf-16-be")
        self.submit: Callable[[int], bytes] = lambda seq: smpp34.SubmitSm(
            "1069", DESTINATION, payload, data_coding=8, registered_delivery=1,
            dest_addr_ton=1, dest_addr_npi=1, sequence_number=seq,
        ).encode()  # fmt: skip

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = b"bench\x00pw\x00\x00\x34\x00\x00\x00"
        transport.write(HEADER.pack(16 + len(body), 0x09, 0, 1) + body)

    def pump(self) -> None:
        frames = []
        while self.sent - self.answered < self.window and self.sent < self.count:
            self.sequence += 1
            self.sent += 1
            frames.append(self.submit(self.sequence))
        if frames and self.transport is not None:
            self.transport.write(b"".join(frames))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos, acks = 0, []
        while len(buf) - pos >= 16:
            length, command, status, sequence = HEADER.unpack_from(buf, pos)
            if len(buf) - pos < length:
                break
            if command == 0x80000004:
                self.answered += 1
                self.refused += status != 0
            elif command == 0x00000005:
                self.receipts += 1
                acks.append(HEADER.pack(17, 0x80000005, 0, sequence) + b"\x00")
            elif command == 0x00000015:
                acks.append(HEADER.pack(16, 0x80000015, 0, sequence))
            elif command == 0x80000009 and not self.bound.done():
                self.bound.set_result(None)
            pos += length
        del buf[:pos]
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))
        if self.bound.done():
            self.pump()
        expected = self.count - self.refused
        if self.answered == self.count and self.receipts >= expected and not self.done.done():
            self.done.set_result(None)


async def run_bare(sim: SimulatorProcess, count: int, window: int) -> float:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(
        lambda: BareClient(count, window), sim.host, sim.port
    )
    await client.bound
    started = time.perf_counter()
    client.pump()
    await client.done
    elapsed = time.perf_counter() - started
    transport.close()
    return elapsed


async def run_channel(sim: SimulatorProcess, count: int, window: int, batch: int) -> float:
    loop = asyncio.get_running_loop()
    receipts = 0
    expected = count
    all_in: asyncio.Future[None] = loop.create_future()

    def sink(item: Inbound) -> None:
        nonlocal receipts
        if isinstance(item, Receipt):
            receipts += 1
            if receipts >= expected and not all_in.done():
                all_in.set_result(None)

    config = SmppConfig(
        host=sim.host, port=sim.port, system_id="bench", password="pw",
        source_addr="1069", window=window,
    )  # fmt: skip
    channel = SmppChannel(config, sink)
    await channel.start()
    next_id = iter(range(count))

    async def submitter() -> int:
        refused = 0
        while True:
            ids = [i for _, i in zip(range(batch), next_id, strict=False)]
            if not ids:
                return refused
            outcomes = await channel.submit_many(
                [OutboundSms(i, "+" + DESTINATION, TEXT) for i in ids]
            )
            refused += sum(not outcome.ok for outcome in outcomes)

    started = time.perf_counter()
    # Two submitters, as the dispatcher will run: one batch is built while one drains.
    refused = sum(await asyncio.gather(submitter(), submitter()))
    expected = count - refused
    if receipts >= expected and not all_in.done():
        all_in.set_result(None)
    await all_in
    elapsed = time.perf_counter() - started
    await channel.close()
    return elapsed


def simulator_config() -> SimulatorConfig:
    return SimulatorConfig(
        seed=7,
        delivery_success_ratio=0.97,
        receipt_delay=LogNormalDelay(median_ms=5, p95_ms=20),
    )


def measure(label: str, count: int, run: Callable[[SimulatorProcess], float]) -> float:
    with SimulatorProcess(simulator_config()) as sim:
        cpu = time.process_time()
        elapsed = run(sim)
        cpu = time.process_time() - cpu  # this process only: the client's own cost
        stats = sim.stop()
    rate = count / elapsed
    print(
        f"{label:<18} {count:>8} msgs {elapsed:7.2f} s {rate:8,.0f} msg/s "
        f"client CPU {cpu / count * 1e6:5.0f} µs/msg "
        f"(simulator: {stats.accepted} accepted, {stats.receipts_sent} receipts)",
        flush=True,
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000, help="messages per submit_many")
    args = parser.parse_args(argv)
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    count, window = args.count, args.window
    ceiling = measure(
        "(a) bare client", count, lambda sim: asyncio.run(run_bare(sim, count, window))
    )
    ours = measure(
        "(b) SmppChannel",
        count,
        lambda sim: asyncio.run(run_channel(sim, count, window, args.batch)),
    )
    print(f"SmppChannel share of ceiling: {ours / ceiling:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
