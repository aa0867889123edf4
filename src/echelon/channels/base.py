"""The one interface every channel implements, and the typed values that cross it.

Values are plain dataclasses holding only JSON-able fields (``datetime`` is written as
ISO 8601); ``to_json``/``from_json`` convert them for logs, queues and worker pipes,
so nothing is ever pickled between processes.

Submit contract (the dispatcher relies on it; see ``SubmitOutcome``):

* ``ok`` — the SMSC accepted every part; ``provider_ids`` holds one id per part.
* ``unknown`` — a request left this process but no answer came back (connection lost,
  response timeout). The SMSC may or may not have the message: mark it ``unknown``
  and never resend blindly; a receipt carrying one of its ids may still reconcile it.
* ``retryable`` — nothing was accepted and sending again later, or on another
  channel, may succeed (throttled, queue full, not connected ...).
* otherwise the failure is permanent for this message: ``reason`` says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from pydantic import TypeAdapter

from echelon.errors import EchelonError

ReceiptStatus = Literal["delivered", "undelivered", "expired", "rejected", "unknown"]
ChannelState = Literal["idle", "connecting", "bound", "closed"]


class ChannelError(EchelonError):
    """A channel could not do what was asked; ``code`` tells which failure."""

    code = "channel_error"
    http_status = 502


class BindFailed(ChannelError):
    code = "bind_failed"


class MessageTooLong(ChannelError):
    code = "message_too_long"
    http_status = 422


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One message from the outbox. ``message_id`` is our outbox id, echoed in the outcome.

    ``source`` replaces the channel's source address; ``source_extension`` is appended
    to it (扩展码) so replies can be routed back to a campaign.
    """

    message_id: int
    destination: str  # E.164, e.g. "+8613800138000"
    text: str
    want_receipt: bool = True
    source: str | None = None
    source_extension: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """What became of one ``OutboundSms``; exactly one per submitted message, same order."""

    message_id: int
    ok: bool
    provider_id: str | None = None  # the first part's id: most SMSCs key receipts by it
    provider_ids: tuple[str, ...] = ()  # every accepted part, in order (one receipt each)
    error_code: str | None = None  # e.g. "ESME_RTHROTTLED", "connection_lost"
    retryable: bool = False
    unknown: bool = False
    reason: str | None = None
    parts: int = 1
    accepted_at: datetime | None = None  # when the SMSC accepted the first part


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt. ``final`` is False for intermediate states (ENROUTE)."""

    provider_id: str
    status: ReceiptStatus
    error_code: str | None
    done_at: datetime | None
    submitted_at: datetime | None
    raw: str
    destination: str = ""
    final: bool = True


@dataclass(frozen=True, slots=True)
class InboundReply:
    """A mobile-originated message, reassembled if it came in parts.

    ``complete`` is False when some parts never arrived before the reassembly timeout;
    the text then holds the parts that did (an opt-out must not be lost to a lost part).
    """

    source: str  # E.164 when the number could be normalised, else as received
    destination: str  # the full address the subscriber replied to
    extension: str  # the part of ``destination`` after our source address ('' if none)
    text: str
    received_at: datetime
    parts: int = 1
    complete: bool = True


Inbound = Receipt | InboundReply
InboundSink = Callable[[Inbound], "asyncio.Future[None] | None"]
"""Called once per receipt/reply, on the event loop, before the SMSC gets its ack.

It must not block. Returning None means "taken": the ack goes at once. Returning a
future defers the ack until the future is done — success acks, an exception answers
"temporary error" — so a receiver that buffers can acknowledge only what it has made
durable (a crash then loses nothing: the SMSC delivers again). Raising answers
"temporary error" at once; receipts are idempotent by provider id, so redelivery is safe.
"""


AcceptedSink = Callable[[int, str], None]
"""Called on the event loop as the SMSC accepts a message's first part, with our
message id and the provider id — before ``submit_many`` returns the batch's outcomes,
so a receipt that overtakes them can be tied to its message at once."""


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """A point-in-time snapshot for ``channels test``, metrics and the console."""

    name: str
    state: ChannelState
    bind_mode: str
    window: int
    outstanding: int
    tps_limit: float | None
    submitted_parts: int = 0
    accepted_parts: int = 0
    rejected_parts: int = 0
    unknown_parts: int = 0
    receipts: int = 0
    replies: int = 0
    reconnects: int = 0
    enquire_links_answered: int = 0
    malformed_inbound: int = 0
    last_error: str | None = None
    bound_since: datetime | None = None
    counters: Mapping[str, int] = field(default_factory=dict)


class Channel(Protocol):
    """A connection to one provider. Receipts and replies go to the ``InboundSink``
    given to the channel's constructor."""

    name: str

    async def start(self) -> None:
        """Connect and bind once; raise ``BindFailed`` if that fails. After a successful
        start the channel reconnects on its own until ``close``."""

    async def submit_many(self, batch: Sequence[OutboundSms]) -> list[SubmitOutcome]:
        """Submit pipelined under the channel's window and TPS limit; one outcome per
        message, in batch order. Never raises for a per-message failure."""

    async def close(self) -> None:
        """Stop submitting, wait briefly for outstanding answers, unbind, disconnect."""

    def health(self) -> ChannelHealth: ...


@dataclass(frozen=True, slots=True)
class StatusClass:
    name: str
    retryable: bool
    reason: str


# SMPP 3.4 command_status → how the dispatcher should treat a refused submit_sm.
# Retryable: the SMSC is busy or broken right now, the message itself is fine.
# 0x45 (submit failed) is retryable on purpose: it is the SMSC's generic "could not
# take it" and says nothing against the message, so backoff then failover is right.
# Codes missing from this table (vendor range 0x400+) are permanent: resending what an
# SMSC refused for a reason we cannot read costs money; operators override per channel.
SMPP_STATUS: Mapping[int, StatusClass] = {
    0x01: StatusClass("ESME_RINVMSGLEN", False, "message length is invalid"),
    0x02: StatusClass("ESME_RINVCMDLEN", False, "command length is invalid"),
    0x03: StatusClass("ESME_RINVCMDID", False, "invalid command id"),
    0x04: StatusClass("ESME_RINVBNDSTS", True, "incorrect bind status"),
    0x05: StatusClass("ESME_RALYBND", True, "already bound"),
    0x06: StatusClass("ESME_RINVPRTFLG", False, "invalid priority flag"),
    0x07: StatusClass("ESME_RINVREGDLVFLG", False, "invalid registered delivery flag"),
    0x08: StatusClass("ESME_RSYSERR", True, "SMSC system error"),
    0x0A: StatusClass("ESME_RINVSRCADR", False, "invalid source address"),
    0x0B: StatusClass("ESME_RINVDSTADR", False, "invalid destination address"),
    0x0C: StatusClass("ESME_RINVMSGID", False, "invalid message id"),
    0x0D: StatusClass("ESME_RBINDFAIL", True, "bind failed"),
    0x0E: StatusClass("ESME_RINVPASWD", False, "invalid password"),
    0x0F: StatusClass("ESME_RINVSYSID", False, "invalid system id"),
    0x14: StatusClass("ESME_RMSGQFUL", True, "SMSC message queue full"),
    0x15: StatusClass("ESME_RINVSERTYP", False, "invalid service type"),
    0x33: StatusClass("ESME_RINVNUMDESTS", False, "invalid number of destinations"),
    0x40: StatusClass("ESME_RINVDESTFLAG", False, "invalid destination flag"),
    0x42: StatusClass("ESME_RINVSUBREP", False, "invalid submit-with-replace request"),
    0x43: StatusClass("ESME_RINVESMCLASS", False, "invalid esm_class"),
    0x44: StatusClass("ESME_RCNTSUBDL", False, "cannot submit to distribution list"),
    0x45: StatusClass("ESME_RSUBMITFAIL", True, "SMSC could not accept the submit"),
    0x48: StatusClass("ESME_RINVSRCTON", False, "invalid source address TON"),
    0x49: StatusClass("ESME_RINVSRCNPI", False, "invalid source address NPI"),
    0x50: StatusClass("ESME_RINVDSTTON", False, "invalid destination address TON"),
    0x51: StatusClass("ESME_RINVDSTNPI", False, "invalid destination address NPI"),
    0x53: StatusClass("ESME_RINVSYSTYP", False, "invalid system type"),
    0x58: StatusClass("ESME_RTHROTTLED", True, "throttled: submit rate exceeded"),
    0x61: StatusClass("ESME_RINVSCHED", False, "invalid scheduled delivery time"),
    0x62: StatusClass("ESME_RINVEXPIRY", False, "invalid validity period"),
    0x64: StatusClass("ESME_RX_T_APPN", True, "temporary application error at the SMSC"),
    0x65: StatusClass("ESME_RX_P_APPN", False, "permanent application error at the SMSC"),
    0x66: StatusClass("ESME_RX_R_APPN", False, "rejected by the SMSC application"),
    0xC0: StatusClass("ESME_RINVOPTPARSTREAM", False, "malformed optional parameters"),
    0xC1: StatusClass("ESME_ROPTPARNOTALLWD", False, "optional parameter not allowed"),
    0xC2: StatusClass("ESME_RINVPARLEN", False, "invalid parameter length"),
    0xC3: StatusClass("ESME_RMISSINGOPTPARAM", False, "missing optional parameter"),
    0xC4: StatusClass("ESME_RINVOPTPARAMVAL", False, "invalid optional parameter value"),
    0xFE: StatusClass("ESME_RDELIVERYFAILURE", True, "delivery failure"),
    0xFF: StatusClass("ESME_RUNKNOWNERR", True, "unknown SMSC error"),
}

# Failures detected on our side of the socket, by the same shape.
LOCAL_STATUS: Mapping[str, StatusClass] = {
    # Nothing of the message left this process: safe to send again.
    "not_connected": StatusClass("not_connected", True, "no bound session to submit on"),
    # Permanent: the text cannot be sent as SMS at all.
    "message_too_long": StatusClass("message_too_long", False, "more than 255 parts"),
    "invalid_message": StatusClass("invalid_message", False, "cannot be encoded as submit_sm"),
    # The request left this process and no answer came back: the outcome is unknown.
    "connection_lost": StatusClass("connection_lost", False, "connection lost before response"),
    "response_timeout": StatusClass("response_timeout", False, "no response in time"),
}


def classify_status(status: int, overrides: Mapping[int, bool] | None = None) -> StatusClass:
    """The class of a non-zero SMPP command_status; ``overrides`` maps status → retryable."""
    known = SMPP_STATUS.get(status)
    base = known or StatusClass(f"0x{status:08X}", False, f"unclassified SMPP status 0x{status:X}")
    if overrides and status in overrides:
        return StatusClass(base.name, overrides[status], base.reason)
    return base


T = TypeVar("T", OutboundSms, SubmitOutcome, Receipt, InboundReply, ChannelHealth)


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def to_json(value: OutboundSms | SubmitOutcome | Receipt | InboundReply | ChannelHealth) -> Any:
    """A JSON-able dict of ``value`` (datetimes as ISO 8601 strings)."""
    return _adapter(type(value)).dump_python(value, mode="json")


def from_json(kind: type[T], data: Any) -> T:
    """The inverse of ``to_json``; raises pydantic's ValidationError on bad data."""
    value: T = _adapter(kind).validate_python(data)
    return value
