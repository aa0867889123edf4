"""Mobile-originated replies: address normalisation and multipart reassembly.

Parts are matched by (source, destination, reference, total) whether the sender used a
UDH or the SAR TLVs. Payload bytes are joined before decoding, so a character split
across parts by the sender still decodes. A message still incomplete after the timeout
is emitted with what arrived (``complete=False``): an opt-out must not be lost to a
missing part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from echelon.channels.base import InboundReply
from echelon.channels.encoding import Alphabet, Concat, join_parts

TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TON_INTERNATIONAL = 1


def concat_from_sar(tlvs: Mapping[int, bytes]) -> Concat | None:
    """Concatenation info carried in SAR TLVs, or None if they are absent or partial."""
    ref = tlvs.get(TLV_SAR_MSG_REF_NUM)
    total = tlvs.get(TLV_SAR_TOTAL_SEGMENTS)
    seq = tlvs.get(TLV_SAR_SEGMENT_SEQNUM)
    if ref is None or not total or not seq:
        return None
    return Concat(int.from_bytes(ref, "big"), total[0], seq[0])


def normalise_msisdn(address: str, ton: int, country_code: str) -> str:
    """Best-effort E.164: international TON or a leading country code/00 gets a '+';
    an 11-digit national number gets ``country_code``; anything else is kept as is."""
    digits = address.lstrip("+")
    if address.startswith("+") or ton == TON_INTERNATIONAL:
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith(country_code) and len(digits) > 11:
        return "+" + digits
    if len(digits) == 11 and digits.isdigit():
        return f"+{country_code}{digits}"
    return address


def split_extension(destination: str, source_addr: str) -> str:
    """The extension code a subscriber replied to: what follows our source address."""
    if source_addr and destination.startswith(source_addr):
        return destination[len(source_addr) :]
    return ""


@dataclass(slots=True)
class _Partial:
    total: int
    data_coding: int
    first_seen: float
    received_at: datetime
    parts: dict[int, bytes] = field(default_factory=dict)


_Key = tuple[str, str, int, int]


class ReplyAssembler:
    """Collects MO parts until a message is whole; not thread-safe (one event loop)."""

    def __init__(self, *, source_addr: str, timeout: float, alphabet: Alphabet) -> None:
        self._source_addr = source_addr
        self._timeout = timeout
        self._alphabet = alphabet
        self._pending: dict[_Key, _Partial] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(
        self,
        *,
        source: str,
        destination: str,
        payload: bytes,
        data_coding: int,
        concat: Concat | None,
        now: float,
        received_at: datetime,
    ) -> InboundReply | None:
        """Take one part (or a whole message); return the reply once it is complete."""
        if concat is None or concat.total <= 1:
            return self._reply(source, destination, [payload], data_coding, received_at, 1, True)
        key = (source, destination, concat.reference, concat.total)
        partial = self._pending.get(key)
        if partial is None:
            partial = _Partial(concat.total, data_coding, now, received_at)
            self._pending[key] = partial
        partial.parts[concat.seq] = payload  # a duplicate part replaces, never doubles
        if len(partial.parts) < partial.total:
            return None
        del self._pending[key]
        return self._complete(key, partial, complete=True)

    def expire(self, now: float) -> list[InboundReply]:
        """Emit, as incomplete, every message whose first part is older than the timeout."""
        stale = [key for key, p in self._pending.items() if now - p.first_seen >= self._timeout]
        return [self._complete(key, self._pending.pop(key), complete=False) for key in stale]

    def _complete(self, key: _Key, partial: _Partial, *, complete: bool) -> InboundReply:
        ordered = [partial.parts[seq] for seq in sorted(partial.parts)]
        return self._reply(
            key[0], key[1], ordered, partial.data_coding, partial.received_at,
            partial.total, complete,
        )  # fmt: skip

    def _reply(
        self,
        source: str,
        destination: str,
        payloads: list[bytes],
        data_coding: int,
        received_at: datetime,
        parts: int,
        complete: bool,
    ) -> InboundReply:
        return InboundReply(
            source=source,
            destination=destination,
            extension=split_extension(destination, self._source_addr),
            text=join_parts(payloads, data_coding, self._alphabet),
            received_at=received_at,
            parts=parts,
            complete=complete,
        )
