"""The compliance rules, pure: eligibility, quiet hours, frequency caps, rate limits.

Nothing here reads a clock or a database; ``now`` and every piece of history are
passed in, so each rule is tested exhaustively (Hypothesis) and the gate that feeds
them (at plan time and again right before submit) stays a thin query layer.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from echelon.errors import InvalidInput

# ``test``: a template's test message to a number a marketer typed — asked for, so no
# consent or quiet hours; every suppression, the rate limits and duplicates still hold.
Kind = Literal["marketing", "service", "verification", "test"]


class BlockReason(StrEnum):
    """Why the gate refused a message; stored on the blocked row, counted in reports."""

    NO_CONSENT = "no_consent"
    OPT_OUT = "opt_out"
    BLACKLIST = "blacklist"
    DNC = "dnc"
    INVALID = "invalid"
    FREQUENCY_CAP = "frequency_cap"
    MIN_GAP = "min_gap"
    RATE_LIMIT = "rate_limit"
    DUPLICATE = "duplicate"
    EXPIRED = "expired"
    # Raised by the planner around the rules: the text itself, or the budget.
    CONTENT = "content"
    RENDER_FAILED = "render_failed"
    BUDGET = "budget"
    # An A/B test's holdout: eligible, and deliberately not messaged.
    HOLDOUT = "holdout"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    BlockReason.NO_CONSENT: "无营销同意",
    BlockReason.OPT_OUT: "已退订",
    BlockReason.BLACKLIST: "黑名单",
    BlockReason.DNC: "免打扰名单",
    BlockReason.INVALID: "空号/无效号码",
    BlockReason.FREQUENCY_CAP: "超过营销频次上限",
    BlockReason.MIN_GAP: "距上一条营销短信太近",
    BlockReason.RATE_LIMIT: "超过单号码发送频率",
    BlockReason.DUPLICATE: "重复内容",
    BlockReason.EXPIRED: "活动结束前未到可发送时段",
    BlockReason.CONTENT: "个性化内容含禁用词",
    BlockReason.RENDER_FAILED: "缺少个性化变量",
    BlockReason.BUDGET: "超出活动预算",
    BlockReason.HOLDOUT: "对照组（不发送）",
}

# Which suppression kinds block which message kind, strongest first (the reason
# recorded is the first that applies).
_BLOCKING: dict[str, tuple[str, ...]] = {
    "marketing": ("invalid", "blacklist", "opt_out", "dnc"),
    "service": ("invalid", "blacklist"),
    "verification": ("invalid",),
    "test": ("invalid", "blacklist", "opt_out", "dnc"),
}


def eligibility(
    kind: Kind, *, marketing_consent: bool, suppressions: Collection[str]
) -> BlockReason | None:
    """Whether a number may receive a message of ``kind`` at all; the reason if not."""
    for suppression in _BLOCKING[kind]:
        if suppression in suppressions:
            return BlockReason(suppression)
    if kind == "marketing" and not marketing_consent:
        return BlockReason.NO_CONSENT
    return None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """The daily window in which marketing may be sent, in local time: [start, end).

    ``start > end`` is a window across midnight (22:00–06:00); ``start == end`` is
    the whole day.
    """

    start: time = time(8, 0)
    end: time = time(21, 0)
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except Exception as exc:
            raise InvalidInput(f"时区 {self.timezone!r} 无效") from exc

    def allows(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime) -> datetime:
        """``moment`` itself if inside the window, else the next window start (UTC)."""
        _aware(moment)
        if self.allows(moment):
            return moment.astimezone(UTC)
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        day: date = local.date()
        if local.time() >= self.start:
            day += timedelta(days=1)
        # A start that falls in a DST gap resolves forward; China has none, others may.
        return datetime.combine(day, self.start, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Caps:
    """Per-number limits. Marketing: at most ``marketing_max`` in any rolling
    ``marketing_window`` and at least ``marketing_min_gap`` apart. Every kind: rate
    limits per minute / hour / day, and identical text within ``duplicate_window``
    is a duplicate.
    """

    marketing_max: int = 4
    marketing_window: timedelta = timedelta(days=30)
    marketing_min_gap: timedelta = timedelta(hours=24)
    per_minute: int = 1
    per_hour: int = 5
    per_day: int = 10
    duplicate_window: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        for name in ("marketing_max", "per_minute", "per_hour", "per_day"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"频次上限 {name} 必须至少为 1")


@dataclass(frozen=True, slots=True)
class Sent:
    """A message to the same number that counts against its limits (planned or sent)."""

    at: datetime
    kind: Kind
    text_hash: str


@dataclass
class History:
    """One number's counted messages, sorted by time; grows as a plan accepts more."""

    entries: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.entries.sort(key=lambda s: s.at)

    def add(self, sent: Sent) -> None:
        bisect.insort(self.entries, sent, key=lambda s: s.at)

    def between(self, start: datetime, end: datetime) -> Sequence[Sent]:
        """Entries with ``start < at < end``."""
        times = [s.at for s in self.entries]
        low = bisect.bisect_right(times, start)
        high = bisect.bisect_left(times, end)
        return self.entries[low:high]


def cap_check(
    kind: Kind, at: datetime, text_hash: str, history: History, caps: Caps
) -> BlockReason | None:
    """Whether one more message at ``at`` keeps this number within its limits.

    Windows are rolling and look both ways: a message planned for later counts
    against an earlier one planned after it was, so no window anywhere exceeds a cap.
    """
    _aware(at)
    if not history.entries:
        return None  # one message alone is within every limit (each is at least 1)
    near = history.between(at - caps.duplicate_window, at + caps.duplicate_window)
    if any(s.text_hash == text_hash for s in near):
        return BlockReason.DUPLICATE
    if kind == "marketing":
        marketing = [s for s in history.entries if s.kind == "marketing"]
        gap = caps.marketing_min_gap
        if any(abs(s.at - at) < gap for s in marketing):
            return BlockReason.MIN_GAP
        if _window_exceeded(
            [s.at for s in marketing], at, caps.marketing_window, caps.marketing_max
        ):
            return BlockReason.FREQUENCY_CAP
    times = [s.at for s in history.entries]
    for window, limit in (
        (timedelta(minutes=1), caps.per_minute),
        (timedelta(hours=1), caps.per_hour),
        (timedelta(days=1), caps.per_day),
    ):
        if _window_exceeded(times, at, window, limit):
            return BlockReason.RATE_LIMIT
    return None


def _window_exceeded(times: list[datetime], at: datetime, window: timedelta, limit: int) -> bool:
    """True if adding ``at`` puts more than ``limit`` events in some half-open window
    of length ``window`` — checked for every window that contains ``at``."""
    nearby = sorted(t for t in times if abs(t - at) < window)
    # Any window of length `window` holding `at` starts in (at - window, at].
    combined = sorted([*nearby, at])
    start = 0
    for end, moment in enumerate(combined):
        while moment - combined[start] >= window:
            start += 1
        if end - start + 1 > limit and combined[start] <= at <= moment:
            return True
    return False


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass aware datetimes")
