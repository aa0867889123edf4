"""Text ↔ SMS payload: alphabet choice, splitting into parts with UDH, and decoding.

Invariants:
* a text made only of GSM 03.38 characters goes out in the default alphabet
  (data_coding 0x00 unpacked GSM-7, or 0x03 latin-1 if configured and encodable),
  anything else as UCS-2 (data_coding 0x08, UTF-16BE so emoji survive);
* one part holds 160 septets / 70 UCS-2 units; parts of a longer text hold at most
  153 septets / 67 units after a 6-byte UDH (8-bit reference, esm_class 0x40);
* a split never falls inside a GSM escape sequence or a UTF-16 surrogate pair,
  because parts are cut between characters and each character's cost is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from echelon.channels.base import MessageTooLong

Alphabet = Literal["gsm7", "latin1"]

DC_DEFAULT = 0x00
DC_IA5 = 0x01
DC_LATIN1 = 0x03
DC_UCS2 = 0x08
DC_GBK = 0x0F  # Chinese SMSCs (CMPP heritage) use 15 for GBK text
ESM_UDHI = 0x40

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
MAX_PARTS = 255  # the 8-bit UDH part counter

_ESC = 0x1B
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {
    "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}  # fmt: skip
_GSM_ENCODE = {ch: bytes([code]) for code, ch in enumerate(GSM_BASIC) if code != _ESC}
_GSM_ENCODE.update({ch: bytes([_ESC, code]) for ch, code in GSM_EXTENSION.items()})
_GSM_DECODE_EXT = {code: ch for ch, code in GSM_EXTENSION.items()}


@dataclass(frozen=True, slots=True)
class EncodedMessage:
    """The wire form of one text: every payload already carries its UDH if ``udhi``."""

    data_coding: int
    payloads: tuple[bytes, ...]
    udhi: bool


def is_gsm(text: str) -> bool:
    return all(ch in _GSM_ENCODE for ch in text)


def _septets(ch: str) -> int:
    return 2 if ch in GSM_EXTENSION else 1


def _utf16_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def split_text(text: str, alphabet: Alphabet = "gsm7") -> tuple[int, list[str]]:
    """The data_coding for ``text`` and the text of each part (one part if it fits)."""
    if is_gsm(text) and (alphabet == "gsm7" or _latin1_ok(text)):
        coding = DC_DEFAULT if alphabet == "gsm7" else DC_LATIN1
        return coding, _chunk(text, _septets, GSM_SINGLE, GSM_PART)
    return DC_UCS2, _chunk(text, _utf16_units, UCS2_SINGLE, UCS2_PART)


def _latin1_ok(text: str) -> bool:
    return all(ord(ch) < 0x100 for ch in text)


def _chunk(text: str, cost: Callable[[str], int], single: int, per_part: int) -> list[str]:
    if len(text) * 2 <= single:  # no character costs more than 2: it fits, skip counting
        return [text]
    costs = [cost(ch) for ch in text]
    if sum(costs) <= single:
        return [text]
    parts: list[str] = []
    start = used = 0
    for index, units in enumerate(costs):
        if used + units > per_part:
            parts.append(text[start:index])
            start, used = index, 0
        used += units
    parts.append(text[start:])
    return parts


def encode_text(part: str, data_coding: int) -> bytes:
    if data_coding == DC_UCS2:
        return part.encode("utf-16-be")
    if data_coding == DC_LATIN1:
        return part.encode("latin-1")
    return b"".join(_GSM_ENCODE[ch] for ch in part)


def encode_message(text: str, reference: int, alphabet: Alphabet = "gsm7") -> EncodedMessage:
    """Encode ``text`` into submit_sm payloads; ``reference`` (0-255) ties the parts."""
    coding, parts = split_text(text, alphabet)
    if len(parts) > MAX_PARTS:
        raise MessageTooLong(f"text needs {len(parts)} parts, at most {MAX_PARTS} are possible")
    if len(parts) == 1:
        return EncodedMessage(coding, (encode_text(parts[0], coding),), udhi=False)
    total = len(parts)
    payloads = tuple(
        concat_udh(reference, total, seq) + encode_text(part, coding)
        for seq, part in enumerate(parts, start=1)
    )
    return EncodedMessage(coding, payloads, udhi=True)


def concat_udh(reference: int, total: int, seq: int) -> bytes:
    """UDH with one concatenation IE (IEI 0x00, 8-bit reference)."""
    return bytes([5, 0x00, 3, reference & 0xFF, total, seq])


@dataclass(frozen=True, slots=True)
class Concat:
    reference: int
    total: int
    seq: int


def strip_udh(payload: bytes) -> tuple[Concat | None, bytes]:
    """Split a UDHI payload into its concatenation info (8- or 16-bit ref) and body."""
    if not payload:
        return None, payload
    header_len = payload[0]
    header, body = payload[1 : 1 + header_len], payload[1 + header_len :]
    pos, concat = 0, None
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + length]
        if iei == 0x00 and length == 3:
            concat = Concat(value[0], value[1], value[2])
        elif iei == 0x08 and length == 4:
            concat = Concat(int.from_bytes(value[:2], "big"), value[2], value[3])
        pos += 2 + length
    return concat, body


def decode_payload(payload: bytes, data_coding: int, alphabet: Alphabet = "gsm7") -> str:
    """Text of an inbound payload; undecodable bytes become U+FFFD rather than failing."""
    if data_coding == DC_UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == DC_GBK:
        return payload.decode("gb18030", errors="replace")
    if data_coding == DC_IA5:
        return payload.decode("ascii", errors="replace")
    if data_coding == DC_DEFAULT and alphabet == "gsm7":
        return decode_gsm(payload)
    return payload.decode("latin-1")


def decode_gsm(payload: bytes) -> str:
    """Unpacked GSM-7 septets to text; an unknown escape falls back to the basic char."""
    out: list[str] = []
    escaped = False
    for byte in payload:
        code = byte & 0x7F
        if escaped:
            out.append(_GSM_DECODE_EXT.get(code, GSM_BASIC[code]))
            escaped = False
        elif code == _ESC:
            escaped = True
        else:
            out.append(GSM_BASIC[code])
    return "".join(out)


def join_parts(parts: Sequence[bytes], data_coding: int, alphabet: Alphabet = "gsm7") -> str:
    """Decode reassembled parts as one payload, so a pair split by a sender survives."""
    return decode_payload(b"".join(parts), data_coding, alphabet)
