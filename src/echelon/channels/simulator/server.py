"""The SMSC simulator: smpp34's server side, driven by ``Behaviour``.

smpp34 (Rust) does the wire work — framing, binds, enquire_link, deliver_sm windows;
we pull one event per submit and answer it. Receipts and replies are timers; one that
falls due while no receiving session of that system_id is bound waits for the next
bind, as a real SMSC would hold it.

Disconnects are injected with an SMSC-initiated unbind while the triggering submit
(and any after it) is held unanswered, so the client sees a link drop with submits
in flight. The held events are released only after the session is gone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import smpp34

from echelon.channels.encoding import (
    ESM_UDHI,
    encode_message,
    encode_text,
    split_text,
    strip_udh,
)
from echelon.channels.pacing import TokenBucket
from echelon.channels.receipts import (
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    format_receipt_text,
)
from echelon.channels.replies import (
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
    ReplyAssembler,
)
from echelon.channels.simulator.behaviour import Behaviour, ReceiptPlan, ReplyPlan
from echelon.channels.simulator.models import ReceivedMessage, SimulatorConfig, SimulatorStats

log = logging.getLogger(__name__)

ESME_RTHROTTLED = 0x58
# Receipt stat word → message_state TLV value (SMPP 3.4 §5.2.28).
_STATE_TLV = {
    "DELIVRD": b"\x02", "EXPIRED": b"\x03", "DELETED": b"\x04",
    "UNDELIV": b"\x05", "UNKNOWN": b"\x07", "REJECTD": b"\x08",
}  # fmt: skip
_TICK = 0.005
STOP_TIMEOUT_SECONDS = 3.0
_SHANGHAI = ZoneInfo("Asia/Shanghai")  # the zone Chinese SMSCs write receipt dates in


@dataclass(slots=True)
class _Session:
    esme: smpp34.Esme
    bucket: TokenBucket | None
    submits: int = 0
    outstanding: int = 0
    closing: bool = False
    held: list[smpp34.SubmitSmEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Mt:
    """A deliver_sm for some receiving session of ``system_id`` (a receipt or an MO)."""

    system_id: str
    source: str
    destination: str
    payload: bytes
    esm_class: int
    data_coding: int
    tlvs: tuple[tuple[int, bytes], ...]
    receipt: bool


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._behaviour = Behaviour(config, self._rng)
        self._id_prefix = f"{self._rng.getrandbits(32):08x}"
        self._next_id = 0
        self._sessions: dict[str, _Session] = {}
        self._waiting: defaultdict[str, list[_Mt]] = defaultdict(list)
        self._assembler = ReplyAssembler(source_addr="", timeout=3600.0, alphabet="gsm7")
        self._messages: list[ReceivedMessage] = []
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._refused: defaultdict[str, int] = defaultdict(int)
        # A stop of smpp34's server still going when serving ended (kept referenced).
        self._stopping: asyncio.Future[Any] | None = None
        self._max_outstanding = 0
        self._due: dict[int, list[_Mt]] = {}
        self._clock_second = -1
        self._clock_text = ""

    def stats(self) -> SimulatorStats:
        counts = self._counts
        return SimulatorStats(
            binds=counts["binds"],
            unbinds=counts["unbinds"],
            submits=counts["submits"],
            accepted=counts["accepted"],
            refused=dict(self._refused),
            max_outstanding=self._max_outstanding,
            receipts_sent=counts["receipts_sent"],
            receipts_failed=counts["receipts_failed"],
            redelivered=counts["redelivered"],
            receipts_pending=sum(len(mts) for mts in self._waiting.values()),
            replies_sent=counts["replies_sent"],
            disconnects=counts["disconnects"],
            messages=tuple(self._messages),
        )

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Accept sessions and answer them until cancelled."""
        config = self._config
        server = smpp34.Server(host=config.host, port=config.port, system_id=config.system_id)
        await server.start()
        await _until_listening(config.host, config.port)
        if on_ready is not None:
            on_ready()
        try:
            while True:
                event = await server.next()
                if isinstance(event, smpp34.SubmitSmEvent):
                    self._on_submit(event)
                elif isinstance(event, smpp34.Esme):
                    self._on_bind(event)
                else:
                    self._on_unbound(event.session_id)
        finally:
            # smpp34's stop has been seen to hang under heavy load (a session that never
            # finishes closing), and to ignore cancellation, so ``wait_for`` (which waits
            # for the cancelled stop) hung with it: wait without cancelling, and leave a
            # stop that is still going to the loop's end. The stats matter more than a
            # tidy goodbye.
            stopping = asyncio.ensure_future(server.stop())
            await asyncio.wait({stopping}, timeout=STOP_TIMEOUT_SECONDS)
            self._stopping = stopping

    # -- sessions ---------------------------------------------------------------------
    def _on_bind(self, esme: smpp34.Esme) -> None:
        tps = self._config.throttle_tps
        bucket = TokenBucket(tps, max(1.0, tps / 10), time.monotonic()) if tps else None
        self._sessions[esme.session_id] = _Session(esme, bucket)
        self._counts["binds"] += 1
        if esme.can_receive:
            for mt in self._waiting.pop(esme.system_id, []):
                self._send_mt(mt)

    def _on_unbound(self, session_id: str) -> None:
        # Held events are dropped only now: smpp34 answers a dropped event with
        # ESME_RSYSERR, which must reach no one for the drop to look like a lost link.
        self._sessions.pop(session_id, None)
        self._counts["unbinds"] += 1

    # -- submits ----------------------------------------------------------------------
    def _on_submit(self, event: smpp34.SubmitSmEvent) -> None:
        self._counts["submits"] += 1
        session = self._sessions.get(event.session_id)
        if session is None or session.closing:
            if session is not None:
                session.held.append(event)
            return
        config = self._config
        session.submits += 1
        if (config.disconnect_every and session.submits % config.disconnect_every == 0) or (
            config.disconnect_share and self._rng.random() < config.disconnect_share
        ):
            session.closing = True
            session.held.append(event)
            self._counts["disconnects"] += 1
            # smpp34 returns an already-running future (its stub says coroutine).
            asyncio.ensure_future(session.esme.unbind()).add_done_callback(_consume)
            return
        if session.bucket is not None and not session.bucket.try_take(time.monotonic()):
            self._refuse(event, ESME_RTHROTTLED)
            return
        payload = event.short_message
        concat = None
        if event.esm_class & ESM_UDHI:
            concat, payload = strip_udh(payload)
        decision = self._behaviour.on_submit(
            event.destination_addr,
            want_receipt=bool(event.registered_delivery & 0x01),
            first_part=concat is None or concat.seq == 1,
        )
        if decision.status:
            self._refuse(event, decision.status)
            return
        self._next_id += 1
        message_id = f"{self._id_prefix}{self._next_id:x}"
        self._counts["accepted"] += 1
        if config.record_messages:
            self._record(event, payload, concat)
        self._answer(session, event, message_id)
        if decision.receipt is not None:
            self._schedule_receipt(session.esme.system_id, event, message_id, decision.receipt)
        if decision.reply is not None:
            delay = (decision.receipt.delay if decision.receipt else 0.0) + decision.reply.delay
            reply = decision.reply
            asyncio.get_running_loop().call_later(
                delay, self._reply, session.esme.system_id, event, reply
            )

    def _refuse(self, event: smpp34.SubmitSmEvent, status: int) -> None:
        self._refused[f"0x{status:08X}"] += 1
        event.reject(status)

    def _answer(self, session: _Session, event: smpp34.SubmitSmEvent, message_id: str) -> None:
        delay = self._config.response_delay_ms
        if delay <= 0:
            event.accept(message_id)
            return
        session.outstanding += 1
        self._max_outstanding = max(self._max_outstanding, session.outstanding)

        def answer() -> None:
            session.outstanding -= 1
            if not session.closing:
                event.accept(message_id)

        asyncio.get_running_loop().call_later(delay / 1000.0, answer)

    def _record(self, event: smpp34.SubmitSmEvent, payload: bytes, concat: Any) -> None:
        whole = self._assembler.add(
            source=event.source_addr,
            destination=event.destination_addr,
            payload=payload,
            data_coding=event.data_coding,
            concat=concat,
            now=time.monotonic(),
            received_at=datetime.now(UTC),
        )
        if whole is not None:
            self._messages.append(
                ReceivedMessage(
                    source=whole.source, destination=whole.destination, text=whole.text,
                    parts=whole.parts, data_coding=event.data_coding,
                    registered_delivery=event.registered_delivery,
                )
            )  # fmt: skip

    # -- receipts and replies ---------------------------------------------------------
    def _schedule_receipt(
        self, system_id: str, event: smpp34.SubmitSmEvent, message_id: str, plan: ReceiptPlan
    ) -> None:
        now = time.time()
        text = format_receipt_text(
            message_id, stat=plan.stat, err=plan.err,
            submitted=self._clock(now), done=self._clock(now + plan.delay),
        )  # fmt: skip
        tlvs: tuple[tuple[int, bytes], ...] = ()
        if self._config.receipt_tlvs:
            tlvs = (
                (TLV_RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\x00"),
                (TLV_MESSAGE_STATE, _STATE_TLV[plan.stat]),
            )
        mt = _Mt(
            system_id, event.destination_addr, event.source_addr, text.encode("ascii"),
            0x04, 0x00, tlvs, receipt=True,
        )  # fmt: skip
        self._later(plan.delay, mt)

    def _later(self, delay: float, mt: _Mt) -> None:
        # Receipts fall due in 5 ms ticks: one timer and one burst of deliver_sm per
        # tick instead of one each, which is most of the simulator's cost at 10k/s.
        loop = asyncio.get_running_loop()
        tick = int((loop.time() + delay) / _TICK) + 1
        due = self._due.get(tick)
        if due is None:
            due = self._due[tick] = []
            loop.call_at(tick * _TICK, self._send_due, tick)
        due.append(mt)

    def _send_due(self, tick: int) -> None:
        for mt in self._due.pop(tick):
            self._send_mt(mt)

    def _clock(self, timestamp: float) -> str:
        """``YYMMDDhhmmss`` in Asia/Shanghai, cached per second (it is asked 2× a message)."""
        second = int(timestamp)
        if second != self._clock_second:
            self._clock_second = second
            self._clock_text = datetime.fromtimestamp(second, _SHANGHAI).strftime("%y%m%d%H%M%S")
        return self._clock_text

    def _reply(self, system_id: str, event: smpp34.SubmitSmEvent, plan: ReplyPlan) -> None:
        recipient, our_address = event.destination_addr, event.source_addr
        reference = self._rng.randrange(256)
        if self._config.reply_multipart == "udh":
            encoded = encode_message(plan.text, reference)
            esm = ESM_UDHI if encoded.udhi else 0
            for payload in encoded.payloads:
                self._send_mt(
                    _Mt(system_id, recipient, our_address, payload, esm, encoded.data_coding,
                        (), receipt=False)
                )  # fmt: skip
        else:
            coding, chunks = split_text(plan.text)
            for seq, chunk in enumerate(chunks, start=1):
                sar = (
                    (TLV_SAR_MSG_REF_NUM, reference.to_bytes(2, "big")),
                    (TLV_SAR_TOTAL_SEGMENTS, bytes([len(chunks)])),
                    (TLV_SAR_SEGMENT_SEQNUM, bytes([seq])),
                )
                payload = encode_text(chunk, coding)
                mt = _Mt(system_id, recipient, our_address, payload, 0, coding, sar, False)
                self._send_mt(mt)
        self._counts["replies_sent"] += 1

    def _send_mt(self, mt: _Mt) -> None:
        esme = self._receiver(mt.system_id)
        if esme is None:
            self._waiting[mt.system_id].append(mt)
            return
        if mt.receipt:
            self._counts["receipts_sent"] += 1
        session = self._sessions[esme.session_id]
        future = asyncio.ensure_future(
            esme.deliver_sm(
                mt.destination,
                mt.payload,
                source_addr=mt.source,
                source_addr_ton=1,  # the subscriber's number, international
                source_addr_npi=1,
                esm_class=mt.esm_class,
                data_coding=mt.data_coding,
                tlvs=[smpp34.Tlv(tag, value) for tag, value in mt.tlvs],
            )
        )
        future.add_done_callback(lambda done: self._mt_done(done, mt, session))

    def _mt_done(
        self, future: asyncio.Future[smpp34.DeliverSmResp], mt: _Mt, session: _Session
    ) -> None:
        """Like an SMSC: what the ESME did not acknowledge is delivered again — after a
        temporary error, or on the next session when the link died before the answer.

        Except on receiver-only sessions: smpp34 1.5.0 answers a bind_receiver's
        deliver_sm_resp with generic_nack, so there the future fails (at session end)
        although the ESME got and acknowledged the PDU; resending would duplicate it.
        Pinned by test_receipts_reach_a_receiver_bind. A session that submitted is a
        transmitter, whose failures are real."""
        if future.cancelled() or future.exception() is not None:
            if session.submits:
                self._redeliver(mt, delay=0.2)  # after the dead session is gone
            elif mt.receipt:
                self._counts["receipts_failed"] += 1
            return
        status = future.result().command_status
        if status == 0:
            return
        if mt.receipt:
            self._counts["receipts_failed"] += 1
        if status != 0x65:  # not "permanent application error": try again shortly
            self._redeliver(mt, delay=1.0)

    def _redeliver(self, mt: _Mt, *, delay: float) -> None:
        self._counts["redelivered"] += 1
        asyncio.get_running_loop().call_later(delay, self._send_mt, mt)

    def _receiver(self, system_id: str) -> smpp34.Esme | None:
        for session in self._sessions.values():
            esme = session.esme
            if esme.system_id == system_id and esme.can_receive and not session.closing:
                return esme
        return None


async def _until_listening(host: str, port: int, timeout: float = 10.0) -> None:
    """smpp34's ``start`` returns before its accept loop listens; READY must not lie."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)
            continue
        writer.close()
        return


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve a fire-and-forget result so a failed unbind is not logged as unhandled."""
    if not future.cancelled():
        future.exception()
