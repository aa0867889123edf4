"""Tracking rules: codes, domains, people versus bots, attribution — cases and properties."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.errors import InvalidInput
from echelon.tracking.models import BotReason, ConversionSource, ShortLinkFormat, Touch
from echelon.tracking.rules import (
    COUPON_ALPHABET,
    LINK_ALPHABET,
    attribute,
    check_domain,
    check_target,
    classify_hit,
    coupon_codes,
    hash_ip,
    is_link_code,
    link_codes,
    normalise_coupon,
)

T0 = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)


def stream(data: bytes) -> object:
    """A ``random_bytes`` that replays ``data`` over and over (as a test source)."""
    position = 0

    def take(n: int) -> bytes:
        nonlocal position
        out = bytes(data[(position + i) % len(data)] for i in range(n))
        position += n
        return out

    return take


@given(
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=6, max_value=8),
    st.binary(min_size=1, max_size=64),
)
def test_link_codes_are_what_was_asked_for_from_any_bytes(
    count: int, length: int, data: bytes
) -> None:
    if all(b >= 248 for b in data):
        data += b"\x00"  # a source of only rejected bytes would never yield a symbol
    codes = link_codes(count, length, stream(data))  # type: ignore[arg-type]
    assert len(codes) == count
    assert all(len(code) == length and is_link_code(code) for code in codes)


def test_link_codes_use_the_whole_alphabet_evenly() -> None:
    symbols = Counter("".join(link_codes(20_000, 8, secrets.token_bytes)))
    assert set(symbols) == set(LINK_ALPHABET)
    expected = 20_000 * 8 / len(LINK_ALPHABET)
    assert all(abs(n - expected) < expected * 0.15 for n in symbols.values())


def test_link_codes_are_not_sequential() -> None:
    codes = link_codes(1_000, 7, secrets.token_bytes)
    assert len(set(codes)) == 1_000
    assert codes != sorted(codes)


@pytest.mark.parametrize("length", [5, 9])
def test_link_code_length_is_six_to_eight(length: int) -> None:
    with pytest.raises(InvalidInput):
        link_codes(1, length, secrets.token_bytes)


@given(st.integers(min_value=0, max_value=200), st.binary(min_size=1, max_size=32))
def test_coupon_codes_are_readable(count: int, data: bytes) -> None:
    codes = coupon_codes(count, 8, stream(data))  # type: ignore[arg-type]
    assert len(codes) == count
    for code in codes:
        assert len(code) == 8
        assert set(code) <= set(COUPON_ALPHABET)
        assert not set(code) & set("0O1I")


def test_coupon_alphabet_has_no_lookalikes() -> None:
    assert len(set(COUPON_ALPHABET)) == 32
    assert not set(COUPON_ALPHABET) & set("0O1I")


@pytest.mark.parametrize(
    ("text", "code"),
    [("ab-cd 23ef", "ABCD23EF"), ("  x7k9m2pq ", "X7K9M2PQ"), ("A_B_C", "ABC")],
)
def test_coupon_codes_are_found_as_typed(text: str, code: str) -> None:
    assert normalise_coupon(text) == code


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("Ab3xK9", True),
        ("Ab3xK9zz", True),
        ("Ab3xK", False),
        ("Ab3xK9zzz", False),
        ("Ab3-K9", False),
        ("favicon.ico", False),
        ("", False),
    ],
)
def test_is_link_code(text: str, valid: bool) -> None:
    assert is_link_code(text) is valid


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz.-", min_size=1, max_size=30))
def test_short_link_length_is_fixed_by_domain_and_code_length(domain: str) -> None:
    link_format = ShortLinkFormat(domain, 7)
    for code in link_codes(3, 7, secrets.token_bytes):
        assert len(link_format.url(code)) == link_format.length
    assert len(link_format.placeholder) == link_format.length
    assert not is_link_code(link_format.placeholder.rsplit("/", 1)[1])


def test_default_short_link_reads_like_the_issue_example() -> None:
    assert ShortLinkFormat("s.example.cn", 6).url("Ab3xK9") == "https://s.example.cn/Ab3xK9"
    assert ShortLinkFormat("s.echelon.cn", 7).length == 28


@pytest.mark.parametrize(
    ("domain", "stored"),
    [("S.Example.CN", "s.example.cn"), (" go.shop-1.com ", "go.shop-1.com")],
)
def test_domains_are_stored_lower_case(domain: str, stored: str) -> None:
    assert check_domain(domain) == stored


@pytest.mark.parametrize(
    "domain", ["https://s.example.cn", "s.example.cn/x", "localhost", "-a.cn", "a..cn", ""]
)
def test_a_domain_is_a_host_name_only(domain: str) -> None:
    with pytest.raises(InvalidInput):
        check_domain(domain)


@pytest.mark.parametrize(
    "url",
    [
        "shop.example/sale",
        "ftp://x.cn",
        "https://",
        "https://x.cn/a b",
        42,
        "https://x.cn/" + "a" * 2000,
    ],
)
def test_bad_targets_are_refused(url: object) -> None:
    with pytest.raises(InvalidInput):
        check_target(url)


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
WECHAT_BROWSER = (
    "Mozilla/5.0 (Linux; Android 13; V2166A) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/5279 MMWEBSDK/20230805 "
    "MMWEBID/2540 MicroMessenger/8.0.42.2460(0x28002A35) WeChat/arm64 Weixin NetType/WIFI"
)
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 12; CUBOT X50) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize("agent", [IPHONE, ANDROID, WECHAT_BROWSER, CUBOT_PHONE])
def test_people_on_phones_are_people(agent: str) -> None:
    assert classify_hit(method="GET", user_agent=agent, last_hit_at=None, now=T0) is None


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 WeChat/3.9 WeChatShareExtension",
        "WeChat-Bot/1.0",
        "Mozilla/5.0 (compatible; QQ/9.0 link preview)",
        "QQ/8.9.5 (iPhone) preview",
        "DingTalkBot-LinkService/1.0",
        "Mozilla/5.0 (Macintosh) AppleWebKit/537.36 DingTalk/7.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "TelegramBot (like TwitterBot)",
        "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        "WhatsApp/2.23.20.0 A",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "curl/8.4.0",
        "Wget/1.21",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0",
        "",
        None,
    ],
)
def test_preview_fetchers_scanners_and_libraries_are_not_people(agent: str | None) -> None:
    assert classify_hit(method="GET", user_agent=agent, last_hit_at=None, now=T0) is BotReason.AGENT


def test_head_requests_are_never_people() -> None:
    assert classify_hit(method="HEAD", user_agent=IPHONE, last_hit_at=None, now=T0) is (
        BotReason.HEAD
    )


@pytest.mark.parametrize(
    ("gap", "reason"),
    [
        (timedelta(milliseconds=10), BotReason.REPEAT),
        (timedelta(milliseconds=999), BotReason.REPEAT),
        (timedelta(seconds=1), None),
        (timedelta(minutes=5), None),
    ],
)
def test_a_second_hit_within_a_second_is_not_counted(
    gap: timedelta, reason: BotReason | None
) -> None:
    assert classify_hit(method="GET", user_agent=IPHONE, last_hit_at=T0, now=T0 + gap) is reason


def test_ip_digests_are_stable_per_key_and_keep_no_address() -> None:
    assert hash_ip("10.1.2.3", b"k") == hash_ip("10.1.2.3", b"k")
    assert hash_ip("10.1.2.3", b"k") != hash_ip("10.1.2.4", b"k")
    assert hash_ip("10.1.2.3", b"k") != hash_ip("10.1.2.3", b"other")
    assert "10.1.2.3" not in hash_ip("10.1.2.3", b"k") and len(hash_ip("::1", b"k")) == 16


FIVE_DAYS, DAY = timedelta(days=5), timedelta(hours=24)


def touch(message_id: int, hours_before: float) -> Touch:
    return Touch(message_id, 1, T0 - timedelta(hours=hours_before))


@pytest.mark.parametrize(
    ("clicks", "deliveries", "expected"),
    [
        ([], [], None),
        ([touch(1, 100)], [touch(2, 1)], (ConversionSource.CLICK, 1)),
        ([touch(1, 100), touch(3, 50)], [], (ConversionSource.CLICK, 3)),
        ([touch(1, 121)], [touch(2, 23)], (ConversionSource.DELIVERY, 2)),
        ([touch(1, 121)], [touch(2, 25)], None),
        ([touch(1, -1)], [touch(2, -1)], None),  # after the purchase: no credit
        ([], [touch(2, 5), touch(4, 2)], (ConversionSource.DELIVERY, 4)),
        ([touch(5, 0)], [], (ConversionSource.CLICK, 5)),
    ],
)
def test_attribution_cases(
    clicks: list[Touch], deliveries: list[Touch], expected: tuple[ConversionSource, int] | None
) -> None:
    credit = attribute(
        T0, clicks=clicks, deliveries=deliveries, click_window=FIVE_DAYS, delivery_window=DAY
    )
    if expected is None:
        assert credit is None
    else:
        assert credit is not None
        assert (credit.source, credit.touch.message_id) == expected


touches = st.lists(
    st.builds(
        Touch,
        st.integers(min_value=1, max_value=50),
        st.none(),
        st.integers(min_value=-3_600, max_value=10 * 86_400).map(
            lambda s: T0 - timedelta(seconds=s)
        ),
    ),
    max_size=8,
)
windows = st.integers(min_value=60, max_value=10 * 86_400).map(lambda s: timedelta(seconds=s))


@given(touches, touches, windows, windows)
def test_attribution_credits_the_last_touch_inside_its_window(
    clicks: list[Touch],
    deliveries: list[Touch],
    click_window: timedelta,
    delivery_window: timedelta,
) -> None:
    credit = attribute(
        T0,
        clicks=clicks,
        deliveries=deliveries,
        click_window=click_window,
        delivery_window=delivery_window,
    )
    clicked = [c for c in clicks if T0 - click_window <= c.at <= T0]
    delivered = [d for d in deliveries if T0 - delivery_window <= d.at <= T0]
    if clicked:
        assert credit is not None and credit.source is ConversionSource.CLICK
        assert credit.touch.at == max(c.at for c in clicked)
    elif delivered:
        assert credit is not None and credit.source is ConversionSource.DELIVERY
        assert credit.touch.at == max(d.at for d in delivered)
    else:
        assert credit is None
