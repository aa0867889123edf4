"""Channels: one module per provider behind ``base.Channel``; the SMSC simulator.

Channels know nothing of the database: they take ``OutboundSms`` and give back
``SubmitOutcome``, ``Receipt`` and ``InboundReply`` values.
"""

from echelon.channels.base import (
    BindFailed,
    Channel,
    ChannelError,
    ChannelHealth,
    Inbound,
    InboundReply,
    InboundSink,
    MessageTooLong,
    OutboundSms,
    Receipt,
    ReceiptStatus,
    SubmitOutcome,
    classify_status,
    from_json,
    to_json,
)

__all__ = [
    "BindFailed",
    "Channel",
    "ChannelError",
    "ChannelHealth",
    "Inbound",
    "InboundReply",
    "InboundSink",
    "MessageTooLong",
    "OutboundSms",
    "Receipt",
    "ReceiptStatus",
    "SubmitOutcome",
    "classify_status",
    "from_json",
    "to_json",
]
