"""Tracking rules, pure: codes, the short domain, telling people from bots, attribution.

Nothing here reads a clock or a database; randomness comes in as bytes, so every rule
is tested with Hypothesis and the services around them stay thin.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Final

from echelon.errors import InvalidInput
from echelon.tracking.models import (
    MAX_CODE_LENGTH,
    MAX_TARGET_LENGTH,
    MAX_WINDOW,
    MIN_CODE_LENGTH,
    BotReason,
    ConversionSource,
    Credit,
    Touch,
)

RandomBytes = Callable[[int], bytes]

LINK_ALPHABET: Final = string.ascii_letters + string.digits
"""62 symbols: a 7-character code is one of 3.5 × 10¹² — not worth guessing."""

COUPON_ALPHABET: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""32 symbols read aloud or typed at a till without doubt: no 0/O, no 1/I."""

REPEAT_WINDOW: Final = timedelta(seconds=1)

_LINK_CODE = re.compile(f"[{LINK_ALPHABET}]{{{MIN_CODE_LENGTH},{MAX_CODE_LENGTH}}}")
_DOMAIN = re.compile(r"(?=.{4,100}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_COUPON_NOISE = re.compile(r"[\s\-_]+")

# Byte → symbol tables for ``bytes.translate``: uniform because each symbol gets the
# same number of byte values; the bytes beyond the last whole multiple are deleted.
_LINK_USABLE = 256 - 256 % len(LINK_ALPHABET)
_LINK_TABLE = bytes(ord(LINK_ALPHABET[b % len(LINK_ALPHABET)]) for b in range(256))
_LINK_REJECT = bytes(range(_LINK_USABLE, 256))
_COUPON_TABLE = bytes(ord(COUPON_ALPHABET[b % len(COUPON_ALPHABET)]) for b in range(256))

# Preview fetchers, crawlers, security scanners and HTTP libraries. Matched anywhere in
# the user agent, case-insensitively.
_FETCHERS: Final = (
    r"bot[/\-;)]|\bbot\b|robot|spider|crawl|slurp|preview|scanner|fetcher|externalhit"
    r"|facebot|slack|telegram|whatsapp|discord|skypeuri|twitterbot|linkedinbot|pinterest|embedly"
    r"|googlebot|bingbot|baiduspider|360spider|yisouspider|bytespider|petalbot"
    r"|curl/|wget/|python-|aiohttp|httpx|go-http-client|java/|okhttp|libwww|apache-httpclient"
    r"|headlesschrome|phantomjs|urlscan|safebrowsing|barracuda|proofpoint|mimecast"
)
_FETCHER = re.compile(_FETCHERS, re.IGNORECASE)
# Chat apps fetch a link to draw its preview card as soon as it is pasted. Their
# in-app browsers, where a person taps it, say so with a full mobile browser agent.
_CHAT_APP = re.compile(r"wechat|weixin|micromessenger|\bqq\b|qq/|dingtalk|feishu|lark", re.I)
_MOBILE_BROWSER = re.compile(r"mozilla/5\.0.*mobile", re.I)


def link_codes(count: int, length: int, random_bytes: RandomBytes) -> list[str]:
    """``count`` codes of ``length`` symbols of ``LINK_ALPHABET``, uniformly drawn
    from ``random_bytes`` (``secrets.token_bytes`` in production)."""
    check_code_length(length)
    needed = count * length
    symbols = ""
    while len(symbols) < needed:
        # About 3% of bytes are rejected; ask for a little more than is needed.
        chunk = random_bytes((needed - len(symbols)) * 17 // 16 + 16)
        symbols += chunk.translate(_LINK_TABLE, _LINK_REJECT).decode("ascii")
    return [symbols[i : i + length] for i in range(0, needed, length)]


def coupon_codes(count: int, length: int, random_bytes: RandomBytes) -> list[str]:
    """``count`` coupon codes of ``length`` symbols of ``COUPON_ALPHABET``."""
    if not 6 <= length <= 16:
        raise ValueError("coupon codes are 6–16 symbols")
    symbols = random_bytes(count * length).translate(_COUPON_TABLE).decode("ascii")
    return [symbols[i : i + length] for i in range(0, count * length, length)]


def is_link_code(text: str) -> bool:
    """Whether ``text`` could be a short-link code (the redirect's first, free check)."""
    return _LINK_CODE.fullmatch(text) is not None


def normalise_coupon(text: str) -> str:
    """A coupon code as typed (spaces, dashes, lower case) in its stored form."""
    return _COUPON_NOISE.sub("", text).upper()


def check_code_length(length: int) -> int:
    if not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        raise InvalidInput(f"短链码长度须为 {MIN_CODE_LENGTH}–{MAX_CODE_LENGTH} 位，现为 {length}")
    return length


def check_domain(domain: str) -> str:
    """A short domain as stored: lower case, a host name only (no scheme, no path)."""
    host = domain.strip().lower()
    if not _DOMAIN.fullmatch(host):
        raise InvalidInput(f"短链域名 {domain!r} 无效：只写域名，例如 s.example.cn")
    return host


def check_target(url: object) -> str:
    """A link target as the redirect will send people to it."""
    if (
        not isinstance(url, str)
        or not url.startswith(("https://", "http://"))
        or len(url) > MAX_TARGET_LENGTH
        or any(char.isspace() for char in url)
        or url.split("://", 1)[1].split("/", 1)[0] == ""
    ):
        raise InvalidInput(
            f"链接 {url!r} 无效：应以 https:// 或 http:// 开头，不含空格，"
            f"最长 {MAX_TARGET_LENGTH} 字"
        )
    return url


def check_window(window: timedelta, what: str) -> timedelta:
    if not timedelta(minutes=1) <= window <= MAX_WINDOW:
        raise InvalidInput(f"{what}须在 1 分钟到 {MAX_WINDOW.days} 天之间")
    return window


def classify_hit(
    *, method: str, user_agent: str | None, last_hit_at: datetime | None, now: datetime
) -> BotReason | None:
    """Why this hit is not a person clicking, or None if it is one.

    HEAD requests and known fetchers (an empty agent included) are never people; a
    hit within ``REPEAT_WINDOW`` of the previous hit on the same link — whatever that
    hit was — is a scanner following the person, a scanner's GET following its own
    HEAD or preview fetch, or a double tap, and is not counted again.
    """
    if method == "HEAD":
        return BotReason.HEAD
    if is_fetcher(user_agent or ""):
        return BotReason.AGENT
    if last_hit_at is not None and timedelta(0) <= now - last_hit_at < REPEAT_WINDOW:
        return BotReason.REPEAT
    return None


@functools.lru_cache(maxsize=8192)
def is_fetcher(user_agent: str) -> bool:
    """Whether a user agent is a preview fetcher, crawler, scanner or HTTP library.
    Agents repeat (a few phone models send most clicks), so answers are remembered."""
    agent = user_agent.strip()
    if not agent or _FETCHER.search(agent):
        return True
    return bool(_CHAT_APP.search(agent)) and not _MOBILE_BROWSER.search(agent)


def hash_ip(ip: str, key: bytes) -> str:
    """A keyed digest of an address: tells hits from one source apart without keeping it."""
    return hashlib.blake2b(ip.encode(), key=key, digest_size=8).hexdigest()


def attribute(
    occurred_at: datetime,
    *,
    clicks: Sequence[Touch],
    deliveries: Sequence[Touch],
    click_window: timedelta,
    delivery_window: timedelta,
) -> Credit | None:
    """The message a purchase at ``occurred_at`` is credited to: the last one the contact
    clicked within ``click_window`` before it, else the last one delivered within
    ``delivery_window`` before it; None if neither. Ties go to the later message."""
    clicked = _last_within(clicks, occurred_at, click_window)
    if clicked is not None:
        return Credit(ConversionSource.CLICK, clicked)
    delivered = _last_within(deliveries, occurred_at, delivery_window)
    if delivered is not None:
        return Credit(ConversionSource.DELIVERY, delivered)
    return None


def _last_within(touches: Sequence[Touch], moment: datetime, window: timedelta) -> Touch | None:
    inside = [t for t in touches if moment - window <= t.at <= moment]
    return max(inside, key=lambda t: (t.at, t.message_id), default=None)
