"""Phone normalisation: a table of known cases and properties over generated numbers."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.audience.phone import (
    Carrier,
    InvalidNumber,
    PhoneProblem,
    describe_phone,
    normalise_phone,
)

SAME_PERSON = [
    "13800138000",
    "+86 138-0013-8000",
    "86 13800138000",
    "8613800138000",
    "008613800138000",
    "１３８００１３８０００",
    "138 0013 8000",
    "138.0013.8000",
    "(+86) 138-0013-8000",
    "＋８６ １３８ ００１３ ８０００",
    " 13800138000\t",
]


@pytest.mark.parametrize("raw", SAME_PERSON)
def test_every_spelling_of_one_number_normalises_alike(raw: str) -> None:
    assert normalise_phone(raw) == "+8613800138000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 415 555 2671", "+14155552671"),
        ("0044 7911 123456", "+447911123456"),
        ("+852 5123 4567", "+85251234567"),
    ],
)
def test_other_countries_need_an_explicit_prefix(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", PhoneProblem.EMPTY),
        ("   ", PhoneProblem.EMPTY),
        ("1380013800", PhoneProblem.TOO_SHORT),
        ("138001380001", PhoneProblem.TOO_LONG),
        ("01012345678", PhoneProblem.NOT_MOBILE),
        ("075512345678", PhoneProblem.NOT_MOBILE),
        ("12345678901", PhoneProblem.BAD_PREFIX),
        ("10086000000", PhoneProblem.BAD_PREFIX),
        ("138001380OO", PhoneProblem.BAD_CHARACTERS),
        ("tel:13800138000", PhoneProblem.BAD_CHARACTERS),
        ("+999 1234567", PhoneProblem.BAD_PREFIX),
        ("+1 212 555", PhoneProblem.TOO_SHORT),
        ("+44 20 7946 0958", PhoneProblem.NOT_MOBILE),
        ("4155552671", PhoneProblem.TOO_SHORT),
    ],
)
def test_refusals_name_the_problem(raw: str, problem: PhoneProblem) -> None:
    with pytest.raises(InvalidNumber) as caught:
        normalise_phone(raw)
    assert caught.value.problem is problem
    assert raw in caught.value.message or not raw.strip()


@pytest.mark.parametrize(
    ("number", "carrier", "province", "city"),
    [
        ("+8613800138000", Carrier.CHINA_MOBILE, "北京市", "北京市"),
        ("+8618912345678", Carrier.CHINA_TELECOM, "江苏省", "常州市"),
        ("+8613012345678", Carrier.CHINA_UNICOM, "重庆市", "重庆市"),
        ("+8619200000000", Carrier.CHINA_BROADNET, None, None),
        ("+14155552671", None, None, None),
    ],
)
def test_carrier_and_region_come_from_the_number(
    number: str, carrier: Carrier | None, province: str | None, city: str | None
) -> None:
    info = describe_phone(number)
    assert (info.carrier, info.province, info.city) == (carrier, province, city)


chinese_numbers = st.from_regex(r"\A1[3-9][0-9]{9}\Z")


@given(chinese_numbers)
def test_the_cached_fast_path_agrees_with_phonenumbers(national: str) -> None:
    parsed = phonenumbers.parse("+86" + national)
    accepted = phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
    try:
        result = normalise_phone(national)
    except InvalidNumber:
        assert not accepted
    else:
        assert accepted
        assert result == "+86" + national
        label = phonenumbers.carrier.name_for_number(parsed, "zh")
        carrier = describe_phone(result).carrier
        assert (carrier.label if carrier else "") in {label, ""}


separators = st.sampled_from(["", " ", "-", ".", "\u3000"])


@given(
    chinese_numbers,
    st.lists(separators, min_size=11, max_size=11),
    st.sampled_from(["", "+86", "86", "0086", "+86 ", "(+86)"]),
    st.booleans(),
)
def test_formatting_never_changes_the_person(
    national: str, gaps: list[str], prefix: str, full_width: bool
) -> None:
    spelled = prefix + "".join(d + g for d, g in zip(national, gaps, strict=True))
    if full_width:
        spelled = spelled.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789+"})
    try:
        plain = normalise_phone(national)
    except InvalidNumber as exc:
        with pytest.raises(InvalidNumber) as caught:
            normalise_phone(spelled)
        assert caught.value.problem is exc.problem
    else:
        assert normalise_phone(spelled) == plain


@given(st.text(max_size=30))
def test_any_input_is_normalised_or_refused_never_crashes(raw: str) -> None:
    try:
        result = normalise_phone(raw)
    except InvalidNumber:
        return
    assert result.startswith("+") and result[1:].isdigit()
    assert phonenumbers.is_valid_number(phonenumbers.parse(result))
    assert normalise_phone(result) == result
