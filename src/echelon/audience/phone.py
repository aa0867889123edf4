"""Phone numbers: normalisation to E.164 and what the number itself tells.

Pure rules. Chinese mobile numbers are the hot path of every import, so their
validity, carrier and region are looked up once per seven-digit block (号段) and
cached; other countries go through ``phonenumbers`` in full.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import phonenumbers
from phonenumbers import PhoneNumberType, ValidationResult, carrier, geocoder

from echelon.audience.regions import split_region
from echelon.errors import InvalidInput

_SEPARATORS = str.maketrans("", "", " \t-.()/\u00a0\u3000")
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


class Carrier(StrEnum):
    CHINA_MOBILE = "china_mobile"
    CHINA_UNICOM = "china_unicom"
    CHINA_TELECOM = "china_telecom"
    CHINA_BROADNET = "china_broadnet"

    @property
    def label(self) -> str:
        return _CARRIER_LABELS[self]


_CARRIER_LABELS = {
    Carrier.CHINA_MOBILE: "中国移动",
    Carrier.CHINA_UNICOM: "中国联通",
    Carrier.CHINA_TELECOM: "中国电信",
    Carrier.CHINA_BROADNET: "中国广电",
}
_CARRIER_BY_LABEL = {label: code for code, label in _CARRIER_LABELS.items()}


class PhoneProblem(StrEnum):
    EMPTY = "empty"
    BAD_CHARACTERS = "bad_characters"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NOT_MOBILE = "not_mobile"
    BAD_PREFIX = "bad_prefix"


_PROBLEM_TEXT = {
    PhoneProblem.EMPTY: "号码为空",
    PhoneProblem.BAD_CHARACTERS: "号码含有数字以外的字符",
    PhoneProblem.TOO_SHORT: "号码位数太少",
    PhoneProblem.TOO_LONG: "号码位数太多",
    PhoneProblem.NOT_MOBILE: "不是手机号码（可能是座机或特殊号码）",
    PhoneProblem.BAD_PREFIX: "号段或国家区号无效",
}


_LENGTH_PROBLEMS = {
    ValidationResult.TOO_SHORT: PhoneProblem.TOO_SHORT,
    ValidationResult.INVALID_LENGTH: PhoneProblem.TOO_SHORT,
    ValidationResult.TOO_LONG: PhoneProblem.TOO_LONG,
}


class InvalidNumber(InvalidInput):
    code = "invalid_number"

    def __init__(self, raw: str, problem: PhoneProblem) -> None:
        super().__init__(f"号码 {raw!r} 无效：{_PROBLEM_TEXT[problem]}")
        self.raw = raw
        self.problem = problem


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    """What the number tells about itself; None where phonenumbers does not know."""

    carrier: Carrier | None
    province: str | None
    city: str | None


def normalise_phone(raw: str) -> str:
    """The E.164 form of ``raw`` (+8613800138000), or ``InvalidNumber`` saying why not.

    Numbers without a country prefix are read as Chinese; other countries need an
    explicit ``+`` or ``00``. Only numbers that can receive SMS (mobiles) are accepted.
    """
    text = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    text = text.translate(_SEPARATORS)
    if not text:
        raise InvalidNumber(raw, PhoneProblem.EMPTY)
    international = False
    if text[0] == "+":
        international, text = True, text[1:]
    elif text.startswith("00"):
        international, text = True, text[2:]
    if not text.isdigit() or not text.isascii():
        raise InvalidNumber(raw, PhoneProblem.BAD_CHARACTERS)
    if international:
        if text.startswith("86"):
            return _chinese_mobile(raw, text[2:])
        return _foreign_mobile(raw, text)
    if len(text) == 13 and text.startswith("86"):
        text = text[2:]
    return _chinese_mobile(raw, text)


def describe_phone(e164: str) -> PhoneInfo:
    """Carrier and region of a normalised number, from the number alone."""
    if e164.startswith("+86") and len(e164) == 14:
        return _china_block(e164[3:10])[1]
    # Carrier and region are only modelled for China; elsewhere both stay unknown.
    return PhoneInfo(None, None, None)


def _chinese_mobile(raw: str, national: str) -> str:
    if national.startswith("0"):
        raise InvalidNumber(raw, PhoneProblem.NOT_MOBILE)
    if len(national) < 11:
        raise InvalidNumber(raw, PhoneProblem.TOO_SHORT)
    if len(national) > 11:
        raise InvalidNumber(raw, PhoneProblem.TOO_LONG)
    if national[0] != "1":
        raise InvalidNumber(raw, PhoneProblem.NOT_MOBILE)
    valid, _ = _china_block(national[:7])
    if not valid:
        raise InvalidNumber(raw, PhoneProblem.BAD_PREFIX)
    return "+86" + national


@cache
def _china_block(block: str) -> tuple[bool, PhoneInfo]:
    """Validity, carrier and region of one seven-digit block such as 1380013."""
    number = phonenumbers.PhoneNumber(country_code=86, national_number=int(block + "0000"))
    if not phonenumbers.is_valid_number(number) or (
        phonenumbers.number_type(number) not in _MOBILE_TYPES
    ):
        return False, PhoneInfo(None, None, None)
    label = carrier.name_for_number(number, "zh")
    province, city = split_region(geocoder.description_for_number(number, "zh"))
    return True, PhoneInfo(_CARRIER_BY_LABEL.get(label), province, city)


def _foreign_mobile(raw: str, digits: str) -> str:
    if len(digits) < 7:
        raise InvalidNumber(raw, PhoneProblem.TOO_SHORT)
    if len(digits) > 15:
        raise InvalidNumber(raw, PhoneProblem.TOO_LONG)
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(raw, PhoneProblem.BAD_PREFIX) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(
            raw,
            _LENGTH_PROBLEMS.get(
                phonenumbers.is_possible_number_with_reason(number), PhoneProblem.BAD_PREFIX
            ),
        )
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidNumber(raw, PhoneProblem.NOT_MOBILE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
