"""Typed, JSON-loadable configuration and statistics of the SMSC simulator.

Random behaviour (shares) is drawn from a seeded RNG; rules keyed on the destination
(suffixes, exact numbers) are deterministic so a test can script each failure mode.
SMPP statuses may be written as integers or as hex strings ("0x58").
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _status(value: Any) -> Any:
    if isinstance(value, str):
        return int(value, 0)
    return value


Status = Annotated[int, BeforeValidator(_status), Field(ge=0, le=0xFFFFFFFF)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LogNormalDelay(_Model):
    """A delay whose median and 95th percentile are given in milliseconds."""

    median_ms: float = Field(default=200.0, ge=0)
    p95_ms: float = Field(default=1500.0, ge=0)

    @property
    def mu(self) -> float:
        return math.log(max(self.median_ms, 1e-3) / 1000.0)

    @property
    def sigma(self) -> float:
        # p95 = median · e^(1.645σ) for a lognormal distribution.
        ratio = max(self.p95_ms, self.median_ms) / max(self.median_ms, 1e-3)
        return math.log(ratio) / 1.6448536269514722


class StatusShare(_Model):
    status: Status
    share: Share


class ReceiptFailure(_Model):
    """A failed delivery outcome: the receipt's ``stat`` and carrier ``err``."""

    stat: Literal["UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN"] = "UNDELIV"
    err: str
    weight: float = Field(default=1.0, gt=0)


class ReplyText(_Model):
    text: str
    weight: float = Field(default=1.0, gt=0)


def _default_failures() -> tuple[ReceiptFailure, ...]:
    return (
        ReceiptFailure(stat="UNDELIV", err="MK:0005", weight=3),  # handset unreachable
        ReceiptFailure(stat="EXPIRED", err="MK:0024", weight=1),
        ReceiptFailure(stat="UNDELIV", err="MI:0013", weight=1),
    )


def _default_replies() -> tuple[ReplyText, ...]:
    return (
        ReplyText(text="TD", weight=2),
        ReplyText(text="退订", weight=2),
        ReplyText(text="好的，谢谢！请问周末营业吗？", weight=1),
    )


class SimulatorConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = "ECHELONSIM"
    seed: int | None = None
    # Submit side.
    submit_errors: tuple[StatusShare, ...] = ()  # random refusals, e.g. 0x58 for 1%
    reject_suffixes: dict[str, Status] = Field(default_factory=dict)  # "0000" → 0x0B
    throttle_tps: float | None = Field(default=None, gt=0)  # per session; above → 0x58
    response_delay_ms: float = Field(default=0.0, ge=0)  # holds submit_sm_resp (window tests)
    disconnect_every: int | None = Field(default=None, ge=1)  # unbind at every Nth submit
    disconnect_share: Share = 0.0  # or at random submits
    # Receipts.
    delivery_success_ratio: Share = 0.97
    receipt_delay: LogNormalDelay = LogNormalDelay()
    receipt_tlvs: bool = True  # receipted_message_id + message_state beside the text
    receipt_failures: tuple[ReceiptFailure, ...] = Field(default_factory=_default_failures)
    empty_numbers: frozenset[str] = frozenset()  # 空号: exact destinations ...
    empty_suffixes: tuple[str, ...] = ()  # ... or any ending with one of these
    empty_error: str = "MK:0001"
    # Mobile-originated replies to delivered messages.
    reply_share: Share = 0.0
    reply_texts: tuple[ReplyText, ...] = Field(default_factory=_default_replies)
    reply_suffixes: dict[str, str] = Field(default_factory=dict)  # "77" → "退订"
    reply_delay: LogNormalDelay = LogNormalDelay(median_ms=500, p95_ms=3000)
    reply_multipart: Literal["udh", "sar"] = "udh"
    # Observation.
    record_messages: bool = False  # keep every reassembled submitted text in the stats

    @classmethod
    def from_file(cls, path: str | Path) -> SimulatorConfig:
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


class ReceivedMessage(_Model):
    source: str
    destination: str
    text: str
    parts: int
    data_coding: int
    registered_delivery: int


class SimulatorStats(_Model):
    """What the simulator saw and did; written as JSON when it shuts down.

    Submits that smpp34 refuses by itself never reach the simulator and are not
    counted: it answers 0x14 (queue full) when its inbound queue overflows, which only
    a client without a window provokes.
    """

    binds: int = 0
    unbinds: int = 0
    submits: int = 0
    accepted: int = 0
    refused: dict[str, int] = Field(default_factory=dict)  # "0x00000058" → count
    max_outstanding: int = 0  # most submits held unanswered at once, on one session
    receipts_sent: int = 0  # deliver_sm written for a receipt
    receipts_failed: int = 0  # of those, refused or unconfirmed (see server._mt_done)
    redelivered: int = 0  # deliver_sm sent again: unacknowledged or temporarily refused
    receipts_pending: int = 0  # no receiving session bound when it fell due
    replies_sent: int = 0
    disconnects: int = 0
    messages: tuple[ReceivedMessage, ...] = ()
