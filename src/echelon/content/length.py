"""Encoding and part counting: how many SMS a text costs, and how it is split.

A text whose every character is in the GSM 03.38 default alphabet or its
extension table goes as GSM-7 (160 septets in one part, 153 per part of a
concatenated message, the rest being the UDH); any other text goes as UCS-2 (70
16-bit units in one part, 67 per part). Extension characters cost two septets
and characters outside the BMP (most emoji) two UCS-2 units; neither is ever
split across parts, so parts are filled greedily and a two-unit character that
does not fit starts the next part — what handsets and SMSCs do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from echelon.errors import InvalidInput

Encoding = Literal["GSM-7", "UCS-2"]

MAX_MESSAGE_LENGTH = 500
"""Characters (code points, as a person counts them) a message may have."""

TRACKED_LINK_LENGTH = 22
"""Characters a tracked link is billed at until tracking supplies real short links."""

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

# GSM 03.38 default alphabet in table order, without ESC (0x1B), which only
# introduces an extension character and is never typed.
_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = "\f^{}\\[~]|€"
_NOT_GSM7 = re.compile(f"[^{re.escape(_GSM7_BASIC + _GSM7_EXTENSION)}]")
_ASTRAL = "\U00010000"


class MessageTooLong(InvalidInput):
    code = "message_too_long"

    def __init__(self, length: int) -> None:
        super().__init__(f"短信共 {length} 字，超过上限 {MAX_MESSAGE_LENGTH} 字，请精简内容")
        self.length = length


@dataclass(frozen=True, slots=True)
class PartCount:
    """What a text costs: ``characters`` billing units (septets or UCS-2 units) in
    ``parts`` parts, with ``remaining`` units free in the last part.

    An empty text has no parts and the whole room of a single part remaining.
    """

    encoding: Encoding
    characters: int
    parts: int
    remaining: int

    @property
    def part_limit(self) -> int:
        """Units one part holds: the single-part limit until a second part is needed."""
        if self.encoding == "GSM-7":
            return GSM7_SINGLE if self.parts <= 1 else GSM7_MULTI
        return UCS2_SINGLE if self.parts <= 1 else UCS2_MULTI


def count_parts(text: str, *, reserved: int = 0) -> PartCount:
    """Parts needed for ``text`` followed by ``reserved`` one-unit characters.

    ``reserved`` stands for text the caller has taken out and will add at send
    time — e.g. ``TRACKED_LINK_LENGTH`` per tracked link; it counts towards the
    length limit but does not change the encoding (links are ASCII).
    Always ``parts == len(split_parts(text))`` when ``reserved`` is 0.
    """
    if reserved < 0:
        raise ValueError("reserved must not be negative")
    _check_length(len(text) + reserved)
    encoding, single, multi = _encoding(text)
    if encoding == "GSM-7":
        doubles = sum(text.count(char) for char in _GSM7_EXTENSION)
    else:
        doubles = len(text.encode("utf-16-le", "surrogatepass")) // 2 - len(text)
    units = len(text) + doubles + reserved
    if units <= single:
        return PartCount(encoding, units, 1 if units else 0, single - units)
    if doubles:
        starts = _part_starts(text, encoding, multi)
        used = _units(text[starts[-1] :], encoding)
        parts = len(starts)
    else:
        parts, used = 1, len(text)
    # Reserved units are single-unit characters appended after the text.
    used += reserved
    if used > multi:
        overflow = used - multi
        more = -(-overflow // multi)
        parts += more
        used = overflow - (more - 1) * multi
    return PartCount(encoding, units, parts, multi - used)


def split_parts(text: str) -> list[str]:
    """The parts ``text`` is sent as: joined they give ``text`` back, each within
    its limit, with no extension character or surrogate pair cut in two.
    """
    _check_length(len(text))
    if not text:
        return []
    encoding, single, multi = _encoding(text)
    if _units(text, encoding) <= single:
        return [text]
    starts = _part_starts(text, encoding, multi)
    return [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def _check_length(length: int) -> None:
    if length > MAX_MESSAGE_LENGTH:
        raise MessageTooLong(length)


def _encoding(text: str) -> tuple[Encoding, int, int]:
    if _NOT_GSM7.search(text) is None:
        return "GSM-7", GSM7_SINGLE, GSM7_MULTI
    return "UCS-2", UCS2_SINGLE, UCS2_MULTI


def _unit_size(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in _GSM7_EXTENSION else 1
    return 2 if char >= _ASTRAL else 1


def _units(text: str, encoding: Encoding) -> int:
    return sum(_unit_size(char, encoding) for char in text)


def _part_starts(text: str, encoding: Encoding, multi: int) -> list[int]:
    """Start index of each part when ``text`` is packed greedily into ``multi`` units."""
    starts = [0]
    used = 0
    for index, char in enumerate(text):
        size = _unit_size(char, encoding)
        if used + size > multi:
            starts.append(index)
            used = 0
        used += size
    return starts
