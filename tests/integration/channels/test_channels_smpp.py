"""SmppChannel against the simulator in a subprocess: the happy paths and the rules."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from channels_support import (
    LONG_REPLY,
    Inbox,
    channel_config,
    eventually,
    run,
    sim_config,
)

from echelon.channels.base import (
    BindFailed,
    Channel,
    ChannelError,
    Inbound,
    OutboundSms,
    Receipt,
    from_json,
    to_json,
)
from echelon.channels.simulator import SimulatorProcess, free_port
from echelon.channels.smpp import SmppChannel, SmppConfig

StartSim = Callable[..., SimulatorProcess]


def sms(
    message_id: int,
    number: str,
    text: str = "您的验证码是 123456",
    *,
    want_receipt: bool = True,
    source_extension: str | None = None,
) -> OutboundSms:
    return OutboundSms(
        message_id, number, text, want_receipt=want_receipt, source_extension=source_extension
    )


def test_submit_outcomes_and_receipts_correlate(shared_sim: SimulatorProcess) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        told: list[tuple[int, str]] = []  # (message id, provider id) as each was accepted
        channel: Channel = SmppChannel(
            channel_config(shared_sim), inbox, on_accepted=lambda *pair: told.append(pair)
        )
        await channel.start()
        batch = [sms(n, f"+86138001{n:05d}") for n in range(1, 19)]
        batch += [sms(100, "+8613800000000"), sms(101, "+8613800004444")]
        outcomes = await channel.submit_many(batch)
        assert sorted(told) == sorted((o.message_id, str(o.provider_id)) for o in outcomes if o.ok)

        assert [o.message_id for o in outcomes] == [s.message_id for s in batch]
        invalid = outcomes[-2]
        assert (invalid.ok, invalid.retryable, invalid.unknown) == (False, False, False)
        assert invalid.error_code == "ESME_RINVDSTADR"
        accepted = {o.provider_id: o.message_id for o in outcomes if o.ok}
        assert len(accepted) == 19

        await inbox.wait_for(lambda: len(inbox.receipts) == 19)
        by_message = {accepted[r.provider_id]: r for r in inbox.receipts}
        assert set(by_message) == {o.message_id for o in outcomes if o.ok}
        assert by_message[1].status == "delivered"
        assert by_message[1].destination == "+8613800100001"
        assert by_message[1].done_at is not None
        assert from_json(Receipt, to_json(by_message[1])) == by_message[1]
        assert (by_message[101].status, by_message[101].error_code) == ("undelivered", "MK:0001")
        health = channel.health()
        assert (health.accepted_parts, health.rejected_parts, health.receipts) == (19, 1, 19)
        await channel.close()
        assert channel.health().state == "closed"

    run(scenario())


def test_long_ucs2_message_arrives_as_concatenated_parts(start_sim: StartSim) -> None:
    sim = start_sim(sim_config(record_messages=True))
    text = "【回声】" + "会员日全场八折，" * 18 + "回T退订"  # 153 chars: 3 UCS-2 parts
    plain = "Hello " * 40  # 240 GSM chars: 2 parts

    async def scenario() -> None:
        inbox = Inbox()
        channel = SmppChannel(channel_config(sim), inbox)
        await channel.start()
        long, gsm = await channel.submit_many(
            [sms(1, "+8613800138001", text), sms(2, "+8613800138002", plain)]
        )
        assert (long.ok, long.parts, len(long.provider_ids)) == (True, 3, 3)
        assert (gsm.ok, gsm.parts) == (True, 2)
        # One receipt per part, as real SMSCs send them.
        await inbox.wait_for(lambda: len(inbox.receipts) == 5)
        assert {r.provider_id for r in inbox.receipts} == {*long.provider_ids, *gsm.provider_ids}
        await channel.close()

    run(scenario())
    received = {m.destination: m for m in sim.stop().messages}
    assert (received["8613800138001"].text, received["8613800138001"].parts) == (text, 3)
    assert received["8613800138001"].data_coding == 0x08
    assert (received["8613800138002"].text, received["8613800138002"].data_coding) == (plain, 0)
    assert received["8613800138001"].registered_delivery == 1


@pytest.mark.parametrize("multipart", ["udh", "sar"])
def test_multipart_ucs2_reply_is_reassembled(start_sim: StartSim, multipart: str) -> None:
    sim = start_sim(sim_config(reply_multipart=multipart))

    async def scenario() -> None:
        inbox = Inbox()
        channel = SmppChannel(channel_config(sim), inbox)
        await channel.start()
        [outcome] = await channel.submit_many([sms(1, "+8613800138088", source_extension="2024")])
        assert outcome.ok
        await inbox.wait_for(lambda: len(inbox.replies) == 1)
        [reply] = inbox.replies
        assert reply.text == LONG_REPLY
        assert (reply.parts, reply.complete) == (2, True)
        assert reply.source == "+8613800138088"
        assert (reply.destination, reply.extension) == ("10692024", "2024")
        await channel.close()

    run(scenario())


def test_short_opt_out_reply(shared_sim: SimulatorProcess) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        channel = SmppChannel(channel_config(shared_sim), inbox)
        await channel.start()
        await channel.submit_many([sms(1, "+8613800138077")])
        await inbox.wait_for(lambda: len(inbox.replies) == 1)
        assert (inbox.replies[0].text, inbox.replies[0].parts) == ("TD", 1)
        await channel.close()

    run(scenario())


def test_throttled_submits_are_retryable(start_sim: StartSim) -> None:
    sim = start_sim(sim_config(throttle_tps=20))

    async def scenario() -> None:
        channel = SmppChannel(channel_config(sim), Inbox())
        await channel.start()
        outcomes = await channel.submit_many([sms(n, "+8613800138000") for n in range(40)])
        throttled = [o for o in outcomes if not o.ok]
        assert len(throttled) >= 30  # burst of 2 at 20/s, all sent within milliseconds
        assert all(o.error_code == "ESME_RTHROTTLED" and o.retryable for o in throttled)
        assert not any(o.unknown for o in throttled)
        await channel.close()

    run(scenario())
    assert sim.stop().refused["0x00000058"] >= 30


def test_window_is_never_exceeded(start_sim: StartSim) -> None:
    sim = start_sim(sim_config(response_delay_ms=40))

    async def scenario() -> None:
        channel = SmppChannel(channel_config(sim, window=8), Inbox())
        await channel.start()
        outcomes = await channel.submit_many(
            [sms(n, "+8613800138000", want_receipt=False) for n in range(80)]
        )
        assert all(o.ok for o in outcomes)
        await channel.close()

    run(scenario())
    # Measured by the SMSC: the most submits it ever held unanswered at once.
    assert sim.stop().max_outstanding == 8


def test_tps_limit_paces_submits(shared_sim: SimulatorProcess) -> None:
    async def scenario() -> float:
        channel = SmppChannel(channel_config(shared_sim, tps=100, tps_burst=5), Inbox())
        await channel.start()
        started = time.monotonic()
        outcomes = await channel.submit_many([sms(n, "+8613800138000") for n in range(55)])
        elapsed = time.monotonic() - started
        assert all(o.ok for o in outcomes)
        await channel.close()
        return elapsed

    # 5 at once, then 50 more at 100/s: at least 0.5 s.
    assert run(scenario()) >= 0.49


def test_receipt_before_its_submit_response_is_not_lost(start_sim: StartSim) -> None:
    no_delay = {"median_ms": 0, "p95_ms": 0}
    sim = start_sim(sim_config(response_delay_ms=300, receipt_delay=no_delay))

    async def scenario() -> None:
        events: list[str] = []
        inbox = Inbox()

        def sink(item: Inbound) -> None:
            events.append("receipt")
            inbox(item)

        channel = SmppChannel(channel_config(sim), sink)
        await channel.start()
        [outcome] = await channel.submit_many([sms(1, "+8613800138000")])
        events.append("outcome")
        assert events == ["receipt", "outcome"]
        assert inbox.receipts[0].provider_id == outcome.provider_id
        await channel.close()

    run(scenario())


def test_enquire_link_keepalive_and_tcp_nodelay(shared_sim: SimulatorProcess) -> None:
    async def scenario() -> None:
        channel = SmppChannel(channel_config(shared_sim, enquire_link_interval=0.05), Inbox())
        await channel.start()
        await eventually(lambda: channel.health().enquire_links_answered >= 3)
        session = channel._session  # the socket option is not part of the public surface
        assert session is not None
        transport = session._transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        await channel.close()

    run(scenario())


def test_receipts_reach_a_receiver_bind(start_sim: StartSim) -> None:
    sim = start_sim(sim_config())

    async def scenario() -> None:
        sent, received = Inbox(), Inbox()
        transmitter = SmppChannel(channel_config(sim, bind_mode="transmitter"), sent)
        await transmitter.start()
        outcomes = await transmitter.submit_many([sms(n, "+8613800138000") for n in range(5)])
        # Receipts wait at the SMSC until a receiver of the same system_id binds.
        receiver = SmppChannel(channel_config(sim, bind_mode="receiver"), received)
        await receiver.start()
        await received.wait_for(lambda: len(received.receipts) == 5)
        assert {r.provider_id for r in received.receipts} == {o.provider_id for o in outcomes}
        assert sent.items == []
        with pytest.raises(ChannelError):
            await receiver.submit_many([sms(9, "+8613800138000")])
        await transmitter.close()
        await receiver.close()

    run(scenario())
    stats = sim.stop()
    assert (stats.binds, stats.receipts_sent, stats.receipts_pending) == (2, 5, 0)


def test_bind_failure_is_reported() -> None:
    async def scenario() -> None:
        config = SmppConfig(host="127.0.0.1", port=free_port(), system_id="x", password="y")
        channel = SmppChannel(config, Inbox())
        with pytest.raises(BindFailed, match="cannot connect"):
            await channel.start()
        assert channel.health().state == "idle"
        assert channel.health().last_error is not None

    run(scenario())
