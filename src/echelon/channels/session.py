"""One SMPP connection: framing, correlation by sequence number, timers.

Invariants:
* every submit_sm written is in ``outstanding`` until exactly one of: its response,
  its response timeout, or the loss of the connection — each reported once to the
  handler, which is how the channel's window permits are returned;
* writes are buffered and flushed before the caller awaits anything (and one loop
  step after each read), so a burst of PDUs costs one syscall instead of one each;
* ``outstanding`` is insertion-ordered with a fixed timeout, hence deadline-ordered:
  the timeout sweep stops at the first entry still in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from echelon.channels import pdu
from echelon.channels.batch import Batch
from echelon.channels.pdu import HEADER, HEADER_LEN, MAX_PDU_LEN, RESPONSE_BIT, Command

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Pending:
    batch: Batch
    message: int
    part: int
    deadline: float


class SessionHandler(Protocol):
    def on_closed(self, session: SmppSession) -> None: ...
    def on_submit_resp(self, entry: Pending, status: int, message_id: str) -> None: ...
    def on_part_lost(self, entry: Pending, code: str) -> None: ...
    def on_deliver_sm(self, session: SmppSession, sequence: int, frame: bytes) -> None: ...
    def on_tick(self, now: float) -> None: ...


class SmppSession(asyncio.Protocol):
    """An asyncio protocol for one TCP connection to an SMSC."""

    def __init__(self, handler: SessionHandler, next_sequence: Callable[[], int]) -> None:
        self._handler = handler
        self._next_sequence = next_sequence
        self._transport: asyncio.Transport | None = None
        self._rbuf = bytearray()
        self._wbuf: list[bytes] = []
        self._flush_pending = False
        self._requests: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._drained: asyncio.Future[None] | None = None
        self._timers: list[asyncio.Task[None]] = []
        self.outstanding: dict[int, Pending] = {}
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.enquire_links_answered = 0
        self.late_responses = 0

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._handler.on_closed(self)
        for task in self._timers:
            task.cancel()
        for future in self._requests.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
        self._requests.clear()
        lost, self.outstanding = self.outstanding, {}
        for entry in lost.values():
            self._handler.on_part_lost(entry, "connection_lost")
        self._wake_drained()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self._rbuf
        buf += data
        size, pos = len(buf), 0
        unpack = HEADER.unpack_from
        while size - pos >= HEADER_LEN:
            length, command, status, sequence = unpack(buf, pos)
            if length < HEADER_LEN or length > MAX_PDU_LEN:
                log.error("SMPP stream out of sync (command_length %d); dropping it", length)
                self.abort()
                return
            if size - pos < length:
                break
            if command == Command.SUBMIT_SM_RESP:
                self._on_submit_resp(status, sequence, pdu.first_c_string(buf, pos, pos + length))
            else:
                self._dispatch(command, status, sequence, bytes(buf[pos : pos + length]))
            pos += length
        del buf[:pos]
        if self._wbuf and not self._flush_pending:
            # Deferred one loop step: the responses just read have woken a submitter,
            # whose next submits then leave in the same write as these acks.
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._flush_pending = False
        self.flush()

    # -- writing ----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(self, frame: bytes) -> None:
        self._wbuf.append(frame)

    def send_soon(self, frame: bytes) -> None:
        """Buffer ``frame`` and flush on the next loop step, for a PDU written from a
        callback rather than a read or a submit (whose flushes would otherwise carry it)."""
        self._wbuf.append(frame)
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._deferred_flush)

    def send_submit(self, frame: bytes, sequence: int, entry: Pending) -> None:
        self.outstanding[sequence] = entry
        self._wbuf.append(frame)

    def flush(self) -> None:
        if self._wbuf and self._transport is not None:
            self._transport.write(b"".join(self._wbuf))
        self._wbuf.clear()

    async def request(self, frame: bytes, sequence: int, timeout: float) -> tuple[int, bytes]:
        """Send a request PDU now and return (command_status, response frame)."""
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._requests[sequence] = future
        self.send(frame)
        self.flush()
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._requests.pop(sequence, None)

    def close(self) -> None:
        self.flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def drain(self, timeout: float) -> None:
        """Wait until no submit is outstanding, or ``timeout`` seconds."""
        if not self.outstanding:
            return
        self._drained = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drained), timeout)

    def _wake_drained(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- reading ----------------------------------------------------------------------
    def _on_submit_resp(self, status: int, sequence: int, message_id: str) -> None:
        entry = self.outstanding.pop(sequence, None)
        if entry is None:  # answered after its timeout: the outcome was already reported
            self.late_responses += 1
            return
        self._handler.on_submit_resp(entry, status, message_id)
        if not self.outstanding:
            self._wake_drained()

    def _dispatch(self, command: int, status: int, sequence: int, frame: bytes) -> None:
        if command == Command.DELIVER_SM:
            self._handler.on_deliver_sm(self, sequence, frame)
        elif command == Command.ENQUIRE_LINK:
            self.send(pdu.header_only(Command.ENQUIRE_LINK_RESP, sequence))
        elif command == Command.UNBIND:
            # The SMSC is going away: acknowledge, then let the channel reconnect.
            self.send(pdu.header_only(Command.UNBIND_RESP, sequence))
            self.close()
        elif command == Command.GENERIC_NACK and sequence in self.outstanding:
            self._on_submit_resp(status or pdu.ESME_RINVCMDID, sequence, "")
        elif command & RESPONSE_BIT:
            future = self._requests.get(sequence)
            if future is not None and not future.done():
                future.set_result((status, frame))
        else:
            self.send(pdu.header_only(Command.GENERIC_NACK, sequence, pdu.ESME_RINVCMDID))

    # -- timers -----------------------------------------------------------------------
    def start_timers(self, *, enquire_interval: float, response_timeout: float) -> None:
        """Keepalive (enquire_link; a missing answer drops the link) and timeout sweep."""
        self._timers = [
            asyncio.create_task(self._keepalive(enquire_interval, response_timeout)),
            asyncio.create_task(self._sweep(min(1.0, response_timeout / 4))),
        ]

    async def _keepalive(self, interval: float, timeout: float) -> None:
        while self.is_open:
            await asyncio.sleep(interval)
            sequence = self._next_sequence()
            try:
                frame = pdu.header_only(Command.ENQUIRE_LINK, sequence)
                await self.request(frame, sequence, timeout)
            except (TimeoutError, ConnectionError):
                log.warning("enquire_link unanswered within %.1fs; dropping the link", timeout)
                self.abort()
                return
            self.enquire_links_answered += 1

    async def _sweep(self, tick: float) -> None:
        while self.is_open:
            await asyncio.sleep(tick)
            now = time.monotonic()
            while self.outstanding:
                sequence = next(iter(self.outstanding))
                if self.outstanding[sequence].deadline > now:
                    break
                self._handler.on_part_lost(self.outstanding.pop(sequence), "response_timeout")
            if not self.outstanding:
                self._wake_drained()
            self._handler.on_tick(now)
