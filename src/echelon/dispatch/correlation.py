"""Receipts matched to their messages in memory, by the process that submitted them.

A channel's receipts reach only the worker holding its lease, over the session its
submits went out on, so that worker knows which message each provider id belongs to
without asking the database:

* *responded*: the SMSC accepted the message and said its provider id, but the
  batch's outcome is not committed yet. A receipt that overtakes the write (an SMSC
  answers a fast delivery's receipt within milliseconds) is stored already linked to
  its message, and its ending is kept here: the batch's outcome write folds it in, so
  the message is written submitted and ended at once. One that comes while that
  write is under way ends its message right after the write commits (``close``);
* *awaiting*: the outcome is committed and the message waits for its receipt; the
  receipt is stored linked and ends the message, no lookup needed;
* anything else — a receipt for a message sent before a restart or by another lease
  holder, a duplicate, a part after the first — takes the database path
  (``inbound.record_receipts_in``).

Nothing here is durable, and nothing needs to be: every receipt is stored before the
SMSC gets its ack, and a crash forgets only what the database path rebuilds. The
``capacity`` bounds memory: the oldest awaited entries give way to the database path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from echelon.channels.base import Receipt
from echelon.dispatch.inbound import Ending, Sent

T = TypeVar("T")  # what the caller keeps with each receipt (the future its ack waits on)


@dataclass(frozen=True, slots=True)
class Arrived(Generic[T]):
    """A final receipt as it arrived on a channel, with when and the caller's token."""

    channel_id: int
    receipt: Receipt
    at: datetime
    token: T


@dataclass(frozen=True, slots=True)
class Matched(Generic[T]):
    """A receipt and its message. With ``sent`` (the outcome is committed) the receipt
    ends the message now; without, the outcome write takes the ending."""

    arrived: Arrived[T]
    message_id: int
    sent: Sent | None


class Correlator(Generic[T]):
    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._awaiting: dict[tuple[int, str], Sent] = {}
        self._responded: dict[tuple[int, str], int] = {}  # → message id
        self._key_of: dict[int, tuple[int, str]] = {}  # message id → its responded key
        self._endings: dict[int, Ending] = {}  # of responded messages, for their write

    @property
    def awaiting(self) -> int:
        return len(self._awaiting)

    def responded(self, channel_id: int, provider_id: str, message_id: int) -> None:
        """The SMSC accepted ``message_id`` (its first part) as ``provider_id``."""
        key = (channel_id, provider_id)
        self._responded[key] = message_id
        self._key_of[message_id] = key

    def sort(self, arrived: Iterable[Arrived[T]]) -> tuple[list[Matched[T]], list[Arrived[T]]]:
        """Receipts just arrived: (those whose message is known here, the rest)."""
        matched: list[Matched[T]] = []
        rest: list[Arrived[T]] = []
        for item in arrived:
            key = (item.channel_id, item.receipt.provider_id)
            sent = self._awaiting.pop(key, None)
            if sent is not None:
                matched.append(Matched(item, sent.message_id, sent))
                continue
            message_id = self._responded.pop(key, None)
            if message_id is None:
                rest.append(item)
                continue
            receipt = item.receipt
            self._endings[message_id] = Ending(receipt.status, receipt.error_code, item.at)
            matched.append(Matched(item, message_id, None))
        return matched, rest

    def endings(self, message_ids: Iterable[int]) -> dict[int, Ending]:
        """The endings known so far for these messages (a batch about to be written)."""
        return {i: self._endings.pop(i) for i in message_ids if i in self._endings}

    def close(
        self, message_ids: Iterable[int], awaiting: Iterable[tuple[int, str, Sent]] = ()
    ) -> list[tuple[Sent, Ending]]:
        """A batch's outcome write is over (committed or not): its ``message_ids`` are
        no longer responded, and ``awaiting`` — (channel, provider id, message) of its
        accepted messages written without an ending — now await their receipts.
        Returns the endings of those whose receipt came during the write, to be applied
        now that the write is committed."""
        ids = list(message_ids)
        for message_id in ids:
            key = self._key_of.pop(message_id, None)
            if key is not None:
                self._responded.pop(key, None)
        late: list[tuple[Sent, Ending]] = []
        for channel_id, provider_id, sent in awaiting:
            ending = self._endings.pop(sent.message_id, None)
            if ending is not None:
                late.append((sent, ending))
            else:
                self._awaiting[(channel_id, provider_id)] = sent
        for message_id in ids:  # written ended, failed or not written at all
            self._endings.pop(message_id, None)
        while len(self._awaiting) > self._capacity:  # oldest first: dicts keep order
            del self._awaiting[next(iter(self._awaiting))]
        return late
