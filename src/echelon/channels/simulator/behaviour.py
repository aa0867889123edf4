"""What the simulated SMSC does with one submit_sm: pure decisions from a seeded RNG.

Deterministic rules win over random shares, in this order: a destination refused by
``reject_suffixes``; an empty number (空号) that always fails with ``empty_error``;
a reply scripted by ``reply_suffixes``. Only then are the random shares drawn.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from echelon.channels.simulator.models import LogNormalDelay, SimulatorConfig

ESME_ROK = 0x00


@dataclass(frozen=True, slots=True)
class ReceiptPlan:
    delay: float  # seconds after the submit
    stat: str
    err: str


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    delay: float  # seconds after the receipt
    text: str


@dataclass(frozen=True, slots=True)
class SubmitDecision:
    status: int  # 0: accept; anything else goes back in submit_sm_resp
    receipt: ReceiptPlan | None = None
    reply: ReplyPlan | None = None


class Behaviour:
    def __init__(self, config: SimulatorConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._failure_weights = [f.weight for f in config.receipt_failures]
        self._reply_weights = [r.weight for r in config.reply_texts]

    def delay(self, distribution: LogNormalDelay) -> float:
        if distribution.median_ms <= 0:
            return 0.0
        return self._rng.lognormvariate(distribution.mu, distribution.sigma)

    def on_submit(
        self, destination: str, *, want_receipt: bool, first_part: bool
    ) -> SubmitDecision:
        config = self._config
        for suffix, status in config.reject_suffixes.items():
            if destination.endswith(suffix):
                return SubmitDecision(status)
        for share in config.submit_errors:
            if self._rng.random() < share.share:
                return SubmitDecision(share.status)
        delivered, receipt = self._receipt(destination)
        reply = self._reply(destination) if delivered and first_part else None
        return SubmitDecision(ESME_ROK, receipt if want_receipt else None, reply)

    def _receipt(self, destination: str) -> tuple[bool, ReceiptPlan]:
        config = self._config
        delay = self.delay(config.receipt_delay)
        if destination in config.empty_numbers or destination.endswith(config.empty_suffixes):
            return False, ReceiptPlan(delay, "UNDELIV", config.empty_error)
        if not config.receipt_failures or self._rng.random() < config.delivery_success_ratio:
            return True, ReceiptPlan(delay, "DELIVRD", "000")
        failure = self._rng.choices(config.receipt_failures, self._failure_weights)[0]
        return False, ReceiptPlan(delay, failure.stat, failure.err)

    def _reply(self, destination: str) -> ReplyPlan | None:
        config = self._config
        for suffix, text in config.reply_suffixes.items():
            if destination.endswith(suffix):
                return ReplyPlan(self.delay(config.reply_delay), text)
        if config.reply_texts and config.reply_share and self._rng.random() < config.reply_share:
            text = self._rng.choices(config.reply_texts, self._reply_weights)[0].text
            return ReplyPlan(self.delay(config.reply_delay), text)
        return None
