"""Typed values of tracking: a workspace's settings, the short-link format, a link as
the redirect sees it, a click hit, and what attribution decided."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

DEFAULT_SHORT_DOMAIN: Final = "s.echelon.cn"
DEFAULT_CODE_LENGTH: Final = 7
MIN_CODE_LENGTH: Final = 6
MAX_CODE_LENGTH: Final = 8
DEFAULT_CLICK_WINDOW: Final = timedelta(days=5)
DEFAULT_DELIVERY_WINDOW: Final = timedelta(hours=24)
MAX_WINDOW: Final = timedelta(days=90)
COUPON_CODE_LENGTH: Final = 8
MAX_TARGET_LENGTH: Final = 2000


@dataclass(frozen=True, slots=True)
class ShortLinkFormat:
    """How a workspace's short links read: ``https://{domain}/{code}``.

    Every code of a format has the same length, so every short link has the same
    length too: text rendered with a real link, or with ``placeholder``, counts the
    same parts (the planner and previews rely on it).
    """

    domain: str
    code_length: int

    def url(self, code: str) -> str:
        return f"https://{self.domain}/{code}"

    @property
    def length(self) -> int:
        """Characters of every short link of this format (ASCII, one unit each)."""
        return len("https://") + len(self.domain) + 1 + self.code_length

    @property
    def placeholder(self) -> str:
        """A link of exactly ``length`` characters whose code is never issued."""
        return self.url("-" * self.code_length)


@dataclass(frozen=True, slots=True)
class TrackingSettings:
    """Short-link format and attribution windows of a workspace."""

    short_domain: str = DEFAULT_SHORT_DOMAIN
    code_length: int = DEFAULT_CODE_LENGTH
    click_window: timedelta = DEFAULT_CLICK_WINDOW
    delivery_window: timedelta = DEFAULT_DELIVERY_WINDOW

    @property
    def link_format(self) -> ShortLinkFormat:
        return ShortLinkFormat(self.short_domain, self.code_length)


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a code stands for: recorded with each click, and where it redirects."""

    link_id: int
    workspace_id: int
    contact_id: int
    campaign_id: int | None
    message_id: int | None
    target_url: str


class BotReason(StrEnum):
    """Why a hit is kept but not counted as a person clicking."""

    HEAD = "head"  # a HEAD request: link checkers and unfurlers, never a tap
    AGENT = "agent"  # a known preview fetcher, crawler, scanner or HTTP library
    REPEAT = "repeat"  # a second hit on the same link within a second

    @property
    def label(self) -> str:
        return {"head": "HEAD 请求", "agent": "预览/爬虫", "repeat": "1 秒内重复"}[self.value]


@dataclass(frozen=True, slots=True)
class Touch:
    """A message that reached a contact at ``at``: clicked, or delivered."""

    message_id: int
    campaign_id: int | None
    at: datetime


class ConversionSource(StrEnum):
    COUPON = "coupon"
    CLICK = "click"
    DELIVERY = "delivery"


@dataclass(frozen=True, slots=True)
class Credit:
    """The message a purchase is credited to, and by which rule."""

    source: ConversionSource
    touch: Touch
