"""Typed values of analytics: the tally a query yields, the metrics drawn from it, the
thresholds they are judged by, and the statuses and alerts that judgement gives."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Final, Literal

RateMetric = Literal[
    "delivery_rate", "click_rate", "conversion_rate", "complaint_rate", "opt_out_rate"
]
RATE_METRICS: Final[tuple[RateMetric, ...]] = (
    "delivery_rate",
    "click_rate",
    "conversion_rate",
    "complaint_rate",
    "opt_out_rate",
)
METRIC_LABELS: Final[dict[str, str]] = {
    "delivery_rate": "送达率",
    "click_rate": "点击率",
    "conversion_rate": "转化率",
    "complaint_rate": "投诉率",
    "opt_out_rate": "退订率",
}
GroupBy = Literal["variant", "channel", "carrier", "province", "hour"]
GROUPINGS: Final[tuple[GroupBy, ...]] = ("variant", "channel", "carrier", "province", "hour")

# Message statuses as the metrics count them (DESIGN, invariant 1).
WAITING: Final = ("planned", "queued", "submitting")
SENT: Final = ("submitted", "delivered", "undelivered", "expired", "rejected", "unknown")
FAILED: Final = ("undelivered", "expired", "rejected", "failed")


class Status(StrEnum):
    """How a rate stands against its thresholds."""

    EXCELLENT = "excellent"
    PASS = "pass"
    FAIL = "fail"
    INSUFFICIENT = "insufficient"  # too few messages to judge

    @property
    def label(self) -> str:
        return {"excellent": "优秀", "pass": "达标", "fail": "未达标", "insufficient": "样本不足"}[
            self.value
        ]


@dataclass(frozen=True, slots=True)
class Threshold:
    """``passing`` and ``excellent`` levels of a rate, and the ``alert`` level past which
    a campaign gets an alert with ``advice``. For a rate where lower is better
    (complaints, opt-outs) every level is a ceiling, otherwise a floor."""

    passing: float
    excellent: float | None
    alert: float
    lower_is_better: bool
    advice: str


DEFAULT_THRESHOLDS: Final[dict[RateMetric, Threshold]] = {
    "delivery_rate": Threshold(
        0.98, 0.995, 0.95, False, "送达率低于 95%：检查号码质量，清理空号、停机和错号"
    ),
    "click_rate": Threshold(0.25, 0.38, 0.25, False, "点击率未达标：检查文案、优惠力度和发送时段"),
    "conversion_rate": Threshold(
        0.03, 0.08, 0.03, False, "转化率未达标：检查落地页、优惠和目标人群"
    ),
    "complaint_rate": Threshold(
        0.001, 0.0005, 0.001, True, "投诉率超标：暂停发送，检查营销同意来源和内容"
    ),
    "opt_out_rate": Threshold(0.02, None, 0.02, True, "退订率超过 2%：检查发送频率和内容相关性"),
}
DEFAULT_MIN_SAMPLE: Final = 100


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The thresholds of a workspace; a rate over fewer than ``min_sample`` messages is
    not judged (too few to tell)."""

    levels: dict[RateMetric, Threshold] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    min_sample: int = DEFAULT_MIN_SAMPLE

    def with_level(
        self,
        metric: RateMetric,
        *,
        passing: float | None = None,
        excellent: float | None = None,
        alert: float | None = None,
    ) -> Thresholds:
        current = self.levels[metric]
        changed = replace(
            current,
            passing=current.passing if passing is None else passing,
            excellent=current.excellent if excellent is None else excellent,
            alert=current.alert if alert is None else alert,
        )
        return replace(self, levels={**self.levels, metric: changed})


@dataclass
class Tally:
    """Counts of a set of messages, as the analytics query sums them."""

    by_status: Counter[str] = field(default_factory=Counter)
    blocked: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    # Delivery latency histogram: bucket index (see rules.latency_bucket) → messages.
    latency: Counter[int] = field(default_factory=Counter)
    cost_e4: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue_fen: int = 0
    opt_outs: int = 0
    complaints: int = 0

    def add(self, other: Tally) -> None:
        self.by_status.update(other.by_status)
        self.blocked.update(other.blocked)
        self.failed.update(other.failed)
        self.latency.update(other.latency)
        self.cost_e4 += other.cost_e4
        self.clicks += other.clicks
        self.conversions += other.conversions
        self.revenue_fen += other.revenue_fen
        self.opt_outs += other.opt_outs
        self.complaints += other.complaints


@dataclass(frozen=True, slots=True)
class Metrics:
    """What a marketer reads off a set of messages. Rates are fractions (None when
    there is nothing to divide by); delivery is over sent, the rest over delivered."""

    planned: int
    waiting: int
    blocked: int
    blocked_by_reason: dict[str, int]
    cancelled: int
    sent: int
    delivered: int
    failed: int
    failed_by_reason: dict[str, int]
    delivery_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    clicks: int
    click_rate: float | None
    conversions: int
    conversion_rate: float | None
    revenue: Decimal
    cost: Decimal
    roi: Decimal | None
    opt_outs: int
    opt_out_rate: float | None
    complaints: int
    complaint_rate: float | None

    def rate(self, metric: RateMetric) -> float | None:
        value: float | None = getattr(self, metric)
        return value

    def sample(self, metric: RateMetric) -> int:
        """The messages a rate is taken over."""
        return self.sent if metric == "delivery_rate" else self.delivered


@dataclass(frozen=True, slots=True)
class Judgement:
    metric: RateMetric
    value: float | None
    status: Status
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """A rate past its alert level: what a campaign's alert record says."""

    metric: RateMetric
    value: float
    threshold: float
    advice: str
