"""Alphabet choice, splitting with UDH, and decoding of inbound payloads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.channels.base import MessageTooLong
from echelon.channels.encoding import (
    DC_DEFAULT,
    DC_GBK,
    DC_LATIN1,
    DC_UCS2,
    GSM_BASIC,
    GSM_EXTENSION,
    concat_udh,
    decode_gsm,
    decode_payload,
    encode_message,
    encode_text,
    join_parts,
    split_text,
    strip_udh,
)

GSM_CHARS = "".join(ch for ch in GSM_BASIC if ch != "\x1b") + "".join(GSM_EXTENSION)


@pytest.mark.parametrize(
    ("text", "coding", "parts"),
    [
        ("", DC_DEFAULT, 1),
        ("a" * 160, DC_DEFAULT, 1),
        ("a" * 161, DC_DEFAULT, 2),
        ("{" * 80, DC_DEFAULT, 1),  # 160 septets: escapes count twice
        ("{" * 81, DC_DEFAULT, 2),
        ("a" * 306, DC_DEFAULT, 2),
        ("a" * 307, DC_DEFAULT, 3),
        ("你" * 70, DC_UCS2, 1),
        ("你" * 71, DC_UCS2, 2),
        ("你" * 134, DC_UCS2, 2),
        ("你" * 135, DC_UCS2, 3),
        ("😀" * 35, DC_UCS2, 1),  # 70 UTF-16 units
        ("😀" * 36, DC_UCS2, 2),
    ],
)
def test_split_counts_parts(text: str, coding: int, parts: int) -> None:
    assert split_text(text) == (coding, split_text(text)[1])
    got_coding, chunks = split_text(text)
    assert (got_coding, len(chunks)) == (coding, parts)


def test_latin1_alphabet_falls_back_to_ucs2_for_greek_gsm_letters() -> None:
    assert split_text("café", "latin1")[0] == DC_LATIN1
    assert split_text("ΔΦ", "latin1")[0] == DC_UCS2
    assert split_text("ΔΦ", "gsm7")[0] == DC_DEFAULT


def test_long_ucs2_message_carries_8bit_concat_udh() -> None:
    encoded = encode_message("你" * 150, reference=0x2A)
    assert encoded.data_coding == DC_UCS2
    assert encoded.udhi
    assert [p[:6] for p in encoded.payloads] == [concat_udh(0x2A, 3, n) for n in (1, 2, 3)]
    assert [len(p) - 6 for p in encoded.payloads] == [134, 134, 32]


def test_more_than_255_parts_is_refused() -> None:
    with pytest.raises(MessageTooLong):
        encode_message("a" * 153 * 256, reference=1)


@given(st.text(alphabet=GSM_CHARS, max_size=900))
def test_gsm_parts_rejoin_and_fit(text: str) -> None:
    coding, chunks = split_text(text)
    assert coding == DC_DEFAULT
    assert "".join(chunks) == text
    limit = 160 if len(chunks) == 1 else 153
    for chunk in chunks:
        encoded = encode_text(chunk, coding)
        assert len(encoded) <= limit
        assert not encoded.endswith(b"\x1b")  # an escape is never cut from its char
        assert decode_gsm(encoded) == chunk


@given(st.text(min_size=1, max_size=600).filter(lambda t: any(c not in GSM_CHARS for c in t)))
def test_ucs2_parts_rejoin_and_never_split_a_surrogate_pair(text: str) -> None:
    coding, chunks = split_text(text)
    assert coding == DC_UCS2
    assert "".join(chunks) == text
    limit = 70 if len(chunks) == 1 else 67
    for chunk in chunks:
        raw = chunk.encode("utf-16-be")
        assert len(raw) // 2 <= limit
        # Each part decodes on its own: no lone surrogate at either end.
        assert raw.decode("utf-16-be") == chunk


@given(st.text(max_size=500), st.integers(0, 255))
def test_encoded_payloads_reassemble(text: str, reference: int) -> None:
    encoded = encode_message(text, reference)
    bodies = []
    for seq, payload in enumerate(encoded.payloads, start=1):
        if encoded.udhi:
            concat, body = strip_udh(payload)
            assert concat is not None
            assert (concat.reference, concat.total, concat.seq) == (
                reference, len(encoded.payloads), seq,
            )  # fmt: skip
            bodies.append(body)
        else:
            bodies.append(payload)
    assert join_parts(bodies, encoded.data_coding) == text


def test_strip_udh_reads_16bit_reference() -> None:
    payload = bytes([6, 0x08, 4, 0x12, 0x34, 2, 1]) + b"hi"
    concat, body = strip_udh(payload)
    assert concat is not None
    assert (concat.reference, concat.total, concat.seq, body) == (0x1234, 2, 1, b"hi")


@pytest.mark.parametrize(
    ("payload", "coding", "text"),
    [
        ("退订".encode("utf-16-be"), DC_UCS2, "退订"),
        ("退订".encode("gb18030"), DC_GBK, "退订"),
        (b"TD", DC_DEFAULT, "TD"),
        (b"caf\xe9", DC_LATIN1, "café"),
        (b"\x00\x1b\x65", DC_DEFAULT, "@€"),
        (b"\xd8\x3d", DC_UCS2, "\ufffd"),  # half a pair: replaced, never an exception
    ],
)
def test_decode_payload(payload: bytes, coding: int, text: str) -> None:
    assert decode_payload(payload, coding) == text
