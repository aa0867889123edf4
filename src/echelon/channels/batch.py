"""Bookkeeping for one ``submit_many`` call: per-part results → one outcome per message.

A batch waits on a single future rather than one per PDU: responses land in a slot
table and the future resolves when the last sent part is answered or written off.

How parts add up to a message (the dispatcher's contract, see ``base``):
* every part accepted → ``ok``;
* any part sent but unanswered (connection lost, timeout) → ``unknown``;
* some parts accepted, others refused → permanent ``partially_accepted``: resending
  the whole text would duplicate the accepted parts on the handset;
* nothing accepted → retryable only if every refusal was retryable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final

from echelon.channels.base import LOCAL_STATUS, OutboundSms, StatusClass, SubmitOutcome
from echelon.channels.base import classify_status as classify_smpp

_OK: Final = 0
_SMPP: Final = 1
_LOCAL: Final = 2
_UNKNOWN_CODES = frozenset({"connection_lost", "response_timeout"})

# (kind, value, reason): value is a provider id, an SMPP status or a local code.
_PartResult = tuple[int, str | int, str | None]


class Batch:
    """Slots for every part of every message; not thread-safe (one event loop)."""

    __slots__ = ("_accepted_at", "_done", "_messages", "_outstanding", "_results", "_sealed")

    def __init__(self, messages: Sequence[OutboundSms]) -> None:
        self._messages = messages
        self._results: list[list[_PartResult | None]] = [[] for _ in messages]
        self._accepted_at: list[float | None] = [None] * len(messages)  # first part's answer
        self._outstanding = 0
        self._sealed = False
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def message_id(self, message: int) -> int:
        return self._messages[message].message_id

    def expect(self, message: int, parts: int) -> None:
        self._results[message] = [None] * parts

    def sent(self) -> None:
        """One more part is on the wire and will be resolved by accept/reject/fail."""
        self._outstanding += 1

    def accept(self, message: int, part: int, provider_id: str) -> None:
        self._results[message][part] = (_OK, provider_id, None)
        if part == 0:
            self._accepted_at[message] = time.time()
        self._resolved()

    def reject(self, message: int, part: int, status: int) -> None:
        self._results[message][part] = (_SMPP, status, None)
        self._resolved()

    def lost(self, message: int, part: int, code: str) -> None:
        """A sent part will never be answered (``connection_lost``/``response_timeout``)."""
        self._results[message][part] = (_LOCAL, code, None)
        self._resolved()

    def not_sent(self, message: int, part: int, code: str, reason: str | None = None) -> None:
        """A part that never left this process."""
        self._results[message][part] = (_LOCAL, code, reason)

    def refuse(self, message: int, code: str, reason: str) -> None:
        """The whole message was refused before any part was sent."""
        self._results[message] = [(_LOCAL, code, reason)]

    def _resolved(self) -> None:
        self._outstanding -= 1
        if self._sealed and self._outstanding == 0 and not self._done.done():
            self._done.set_result(None)

    async def wait(self) -> None:
        """Seal the batch (no more parts) and wait until every sent part is resolved."""
        self._sealed = True
        if self._outstanding == 0:
            return
        await self._done

    def outcomes(self, overrides: Mapping[int, bool] | None = None) -> list[SubmitOutcome]:
        outcomes = [
            _outcome(sms.message_id, parts, overrides)
            for sms, parts in zip(self._messages, self._results, strict=True)
        ]
        return [
            replace(o, accepted_at=datetime.fromtimestamp(at, UTC)) if at is not None else o
            for o, at in zip(outcomes, self._accepted_at, strict=True)
        ]


def _classify(kind: int, value: str | int, overrides: Mapping[int, bool] | None) -> StatusClass:
    if kind == _SMPP:
        return classify_smpp(int(value), overrides)
    return LOCAL_STATUS[str(value)]


def _outcome(
    message_id: int, parts: list[_PartResult | None], overrides: Mapping[int, bool] | None
) -> SubmitOutcome:
    results = [r for r in parts if r is not None]
    if len(results) != len(parts):  # a bug, not an SMSC answer: say so loudly
        raise RuntimeError(f"message {message_id}: {len(parts) - len(results)} parts unresolved")
    ids = tuple(str(value) for kind, value, _ in results if kind == _OK)
    count = len(parts)
    if len(ids) == count:
        return SubmitOutcome(message_id, True, ids[0], ids, parts=count)
    failures = [(kind, value, reason) for kind, value, reason in results if kind != _OK]
    lost = [value for kind, value, _ in failures if kind == _LOCAL and value in _UNKNOWN_CODES]
    if lost:
        status = LOCAL_STATUS[str(lost[0])]
        return _failed(message_id, ids, count, status, unknown=True)
    if ids:
        kind, value, _ = failures[0]
        first = _classify(kind, value, overrides)
        summary = f"{len(ids)}/{count} parts accepted, then {first.name}: {first.reason}"
        return _failed(message_id, ids, count, StatusClass("partially_accepted", False, summary))
    classes = [(_classify(kind, value, overrides), note) for kind, value, note in failures]
    permanent = [(c, note) for c, note in classes if not c.retryable]
    chosen, note = permanent[0] if permanent else classes[0]
    return _failed(message_id, ids, count, chosen, reason=note)


def _failed(
    message_id: int,
    ids: tuple[str, ...],
    count: int,
    status: StatusClass,
    *,
    unknown: bool = False,
    reason: str | None = None,
) -> SubmitOutcome:
    return SubmitOutcome(
        message_id,
        False,
        ids[0] if ids else None,
        ids,
        error_code=status.name,
        retryable=status.retryable and not unknown,
        unknown=unknown,
        reason=reason or status.reason,
        parts=count,
    )
