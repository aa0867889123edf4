"""Part counting and splitting: known cases, then properties over random texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.content.length import (
    MAX_MESSAGE_LENGTH,
    TRACKED_LINK_LENGTH,
    MessageTooLong,
    PartCount,
    count_parts,
    split_parts,
)
from echelon.errors import InvalidInput

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"


def units(text: str, encoding: str) -> int:
    """Billing units computed independently of the module under test."""
    if encoding == "GSM-7":
        return sum(2 if char in GSM_EXTENSION else 1 for char in text)
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", PartCount("GSM-7", 0, 0, 160)),
        ("a", PartCount("GSM-7", 1, 1, 159)),
        ("a" * 160, PartCount("GSM-7", 160, 1, 0)),
        ("a" * 161, PartCount("GSM-7", 161, 2, 145)),
        ("a" * 306, PartCount("GSM-7", 306, 2, 0)),
        ("a" * 307, PartCount("GSM-7", 307, 3, 152)),
        ("€", PartCount("GSM-7", 2, 1, 158)),
        ("{}[]~^|\\", PartCount("GSM-7", 16, 1, 144)),
        ("€" * 80, PartCount("GSM-7", 160, 1, 0)),
        # 76 euro signs fill 152 of 153 septets; the 77th starts part two.
        ("€" * 81, PartCount("GSM-7", 162, 2, 143)),
        ("a" * 152 + "€" + "a" * 10, PartCount("GSM-7", 164, 2, 141)),
        ("Ç@£$¥ΔΦ§¿Ñ", PartCount("GSM-7", 10, 1, 150)),
        ("ç", PartCount("UCS-2", 1, 1, 69)),
        ("`", PartCount("UCS-2", 1, 1, 69)),
        ("中" * 70, PartCount("UCS-2", 70, 1, 0)),
        ("中" * 71, PartCount("UCS-2", 71, 2, 63)),
        ("中" * 134, PartCount("UCS-2", 134, 2, 0)),
        ("中" * 135, PartCount("UCS-2", 135, 3, 66)),
        ("Hello 你好", PartCount("UCS-2", 8, 1, 62)),
        ("😀", PartCount("UCS-2", 2, 1, 68)),
        ("中" * 68 + "😀", PartCount("UCS-2", 70, 1, 0)),
        # The emoji would straddle parts one and two, so it opens part two.
        ("中" * 66 + "😀" + "中" * 10, PartCount("UCS-2", 78, 2, 55)),
        ("【星河商城】双11预售开启，拒收请回复R", PartCount("UCS-2", 20, 1, 50)),
    ],
)
def test_known_counts(text: str, expected: PartCount) -> None:
    assert count_parts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("a" * 160, ["a" * 160]),
        ("a" * 161, ["a" * 153, "a" * 8]),
        ("a" * 152 + "€" + "a" * 10, ["a" * 152, "€" + "a" * 10]),
        ("中" * 71, ["中" * 67, "中" * 4]),
        ("中" * 66 + "😀" + "中" * 10, ["中" * 66, "😀" + "中" * 10]),
    ],
)
def test_known_splits(text: str, expected: list[str]) -> None:
    assert split_parts(text) == expected


@pytest.mark.parametrize(
    ("text", "reserved", "parts"),
    [
        ("", TRACKED_LINK_LENGTH, 1),
        ("a" * 138, TRACKED_LINK_LENGTH, 1),
        ("a" * 139, TRACKED_LINK_LENGTH, 2),
        ("中" * 48, TRACKED_LINK_LENGTH, 1),
        ("中" * 49, TRACKED_LINK_LENGTH, 2),
        ("中" * 66 + "😀" + "中" * 2, 1, 2),
        ("中" * 66 + "😀" + "中" * 64, 1, 2),
        ("中" * 66 + "😀" + "中" * 64, 2, 3),
    ],
)
def test_reserved_units_count_as_appended_characters(text: str, reserved: int, parts: int) -> None:
    assert count_parts(text, reserved=reserved).parts == parts


def test_length_limit_counts_code_points() -> None:
    # 33 emoji (66 units) per part: an emoji never straddles the 67-unit boundary.
    assert count_parts("😀" * MAX_MESSAGE_LENGTH).parts == 16
    with pytest.raises(MessageTooLong) as caught:
        count_parts("中" * (MAX_MESSAGE_LENGTH + 1))
    assert caught.value.length == 501
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.code == "message_too_long"
    assert "501" in caught.value.message


def test_length_limit_includes_reserved_units() -> None:
    with pytest.raises(MessageTooLong):
        count_parts("a" * 480, reserved=TRACKED_LINK_LENGTH)
    with pytest.raises(MessageTooLong):
        split_parts("a" * 501)


def test_negative_reservation_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="reserved"):
        count_parts("a", reserved=-1)


gsm_texts = st.text(alphabet=GSM_BASIC + GSM_EXTENSION, max_size=MAX_MESSAGE_LENGTH)
mixed_texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(GSM_BASIC + GSM_EXTENSION),
        st.sampled_from("中文短信，。！【】"),
        st.sampled_from("😀🎉𝐒"),
    ),
    max_size=MAX_MESSAGE_LENGTH,
)
any_texts = st.one_of(gsm_texts, mixed_texts, st.text(max_size=MAX_MESSAGE_LENGTH))


@given(any_texts)
def test_split_agrees_with_count(text: str) -> None:
    count = count_parts(text)
    parts = split_parts(text)
    assert count.parts == len(parts)
    assert "".join(parts) == text
    assert count.characters == units(text, count.encoding)
    assert sum(units(part, count.encoding) for part in parts) == count.characters


@given(any_texts)
def test_each_part_fits_and_remaining_is_the_room_left(text: str) -> None:
    count = count_parts(text)
    parts = split_parts(text)
    assert all(0 < units(part, count.encoding) <= count.part_limit for part in parts)
    assert 0 <= count.remaining <= count.part_limit
    if parts:
        assert count.remaining == count.part_limit - units(parts[-1], count.encoding)


@given(any_texts, st.sampled_from(["a", "€", "中", "😀", "\n"]))
def test_appending_never_reduces_parts(text: str, char: str) -> None:
    if len(text) < MAX_MESSAGE_LENGTH:
        assert count_parts(text + char).parts >= count_parts(text).parts


@given(any_texts, st.integers(min_value=0, max_value=MAX_MESSAGE_LENGTH))
def test_reserved_is_the_same_as_appending_ascii(text: str, reserved: int) -> None:
    if len(text) + reserved <= MAX_MESSAGE_LENGTH:
        reserving = count_parts(text, reserved=reserved)
        appended = count_parts(text + "a" * reserved)
        assert (reserving.parts, reserving.remaining) == (appended.parts, appended.remaining)


@given(gsm_texts)
def test_gsm_alphabet_text_is_gsm(text: str) -> None:
    assert count_parts(text).encoding == "GSM-7"


@given(gsm_texts, st.sampled_from("中ç`😀"))
def test_one_foreign_character_switches_to_ucs2(text: str, char: str) -> None:
    if len(text) < MAX_MESSAGE_LENGTH:
        assert count_parts(text + char).encoding == "UCS-2"
