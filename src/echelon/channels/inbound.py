"""deliver_sm → ``Receipt`` or ``InboundReply``, handed to the sink; the answer to give.

A deliver_sm is a receipt when its esm_class says so (0x04 receipt, 0x20 intermediate
notification) or it carries receipted_message_id; anything else is a mobile-originated
reply, reassembled across parts. The sink runs before the SMSC gets its
deliver_sm_resp, so a receipt is acknowledged only once it has been taken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import smpp34

from echelon.channels import pdu
from echelon.channels.base import Inbound, InboundSink
from echelon.channels.encoding import ESM_UDHI, Alphabet, strip_udh
from echelon.channels.receipts import TLV_RECEIPTED_MESSAGE_ID, build_receipt
from echelon.channels.replies import ReplyAssembler, concat_from_sar, normalise_msisdn

log = logging.getLogger(__name__)

TLV_MESSAGE_PAYLOAD = 0x0424
_RECEIPT_ESM = frozenset({0x04, 0x20})


class InboundHandler:
    """Decodes deliver_sm frames for one channel; counts what it saw."""

    def __init__(
        self,
        sink: InboundSink,
        *,
        name: str,
        source_addr: str,
        country_code: str,
        receipt_timezone: str,
        alphabet: Alphabet,
        reassembly_timeout: float,
    ) -> None:
        self._sink = sink
        self._name = name
        self._country_code = country_code
        self._zone = ZoneInfo(receipt_timezone)
        self._assembler = ReplyAssembler(
            source_addr=source_addr, timeout=reassembly_timeout, alphabet=alphabet
        )
        self.receipts = self.replies = self.malformed = self.sink_errors = 0

    @property
    def pending_parts(self) -> int:
        return self._assembler.pending

    def handle(self, frame: bytes) -> int | asyncio.Future[None]:
        """Process one deliver_sm; return the command_status for its deliver_sm_resp:
        0 (taken), 0x64 (sink failed: deliver again later) or 0x65 (malformed: do not)
        — or the sink's future, when the answer waits for it (see ``InboundSink``)."""
        try:
            deliver = pdu.decode_deliver_sm(frame)
        except (smpp34.SmppError, ValueError) as exc:
            log.warning("%s: malformed deliver_sm refused: %s", self._name, exc)
            self.malformed += 1
            return pdu.ESME_RX_P_APPN
        tlvs = {tlv.tag: tlv.value for tlv in deliver.tlvs}
        payload = deliver.short_message or tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
        source = normalise_msisdn(deliver.source_addr, deliver.source_addr_ton, self._country_code)
        item: Inbound | None
        if deliver.esm_class & 0x3C in _RECEIPT_ESM or TLV_RECEIPTED_MESSAGE_ID in tlvs:
            # Receipt text is ASCII by the spec; latin-1 never fails on stray bytes.
            text = payload.decode("latin-1")
            item = build_receipt(text, tlvs, destination=source, zone=self._zone)
            if item is None:
                self.malformed += 1
                return pdu.ESME_ROK  # nothing to correlate; redelivery would not help
            self.receipts += 1
        else:
            concat, body = strip_udh(payload) if deliver.esm_class & ESM_UDHI else (None, payload)
            item = self._assembler.add(
                source=source,
                destination=deliver.destination_addr,
                payload=body,
                data_coding=deliver.data_coding,
                concat=concat or concat_from_sar(tlvs),
                now=time.monotonic(),
                received_at=datetime.now(UTC),
            )
            if item is None:
                return pdu.ESME_ROK  # a part, kept until its message is whole
            self.replies += 1
        return self._deliver(item)

    def expire(self, now: float) -> None:
        """Emit replies whose missing parts did not come in time (as incomplete)."""
        for reply in self._assembler.expire(now):
            self.replies += 1
            self._deliver(reply)

    def _deliver(self, item: Inbound) -> int | asyncio.Future[None]:
        try:
            durable = self._sink(item)
        except Exception:
            # The SMSC will redeliver (temporary error); a broken sink must not kill the link.
            log.exception("%s: inbound sink failed for %r", self._name, item)
            self.sink_errors += 1
            return pdu.ESME_RX_T_APPN
        return pdu.ESME_ROK if durable is None else durable
