"""MO reassembly and address normalisation."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.channels.base import InboundReply
from echelon.channels.encoding import DC_UCS2, Concat
from echelon.channels.replies import (
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
    ReplyAssembler,
    concat_from_sar,
    normalise_msisdn,
)

AT = datetime(2024, 1, 1, tzinfo=UTC)


def assembler(timeout: float = 60.0) -> ReplyAssembler:
    return ReplyAssembler(source_addr="1069123", timeout=timeout, alphabet="gsm7")


def add(
    asm: ReplyAssembler, payload: bytes, concat: Concat | None, now: float = 0.0
) -> InboundReply | None:
    return asm.add(
        source="+8613800138000", destination="106912388", payload=payload,
        data_coding=DC_UCS2, concat=concat, now=now, received_at=AT,
    )  # fmt: skip


def test_single_part_reply_with_extension() -> None:
    reply = add(assembler(), "退订".encode("utf-16-be"), None)
    assert reply is not None
    assert (reply.text, reply.extension, reply.parts, reply.complete) == ("退订", "88", 1, True)


@given(st.text(min_size=2, max_size=300), st.randoms(use_true_random=False))
def test_parts_in_any_order_reassemble_even_across_a_surrogate_pair(
    text: str, rnd: random.Random
) -> None:
    raw = text.encode("utf-16-be")
    # Cut at arbitrary even byte offsets, as a careless sender might (mid-pair allowed).
    cuts = sorted({rnd.randrange(0, len(raw) // 2) * 2 for _ in range(3)} - {0})
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    order = list(range(len(chunks)))
    rnd.shuffle(order)
    asm = assembler()
    results = [add(asm, chunks[i], Concat(9, len(chunks), i + 1)) for i in order]
    done = [r for r in results if r is not None]
    if len(chunks) == 1:
        assert done[0].text == text
        return
    assert len(done) == 1
    assert results[-1] is done[0]
    assert done[0].text == text
    assert asm.pending == 0


def test_duplicate_part_does_not_complete_early() -> None:
    asm = assembler()
    assert add(asm, "退".encode("utf-16-be"), Concat(1, 2, 1)) is None
    assert add(asm, "退".encode("utf-16-be"), Concat(1, 2, 1)) is None
    reply = add(asm, "订".encode("utf-16-be"), Concat(1, 2, 2))
    assert reply is not None
    assert reply.text == "退订"


def test_incomplete_reply_is_emitted_after_timeout() -> None:
    asm = assembler(timeout=10)
    assert add(asm, "TD ".encode("utf-16-be"), Concat(3, 3, 1), now=0.0) is None
    assert asm.expire(5.0) == []
    [reply] = asm.expire(10.0)
    assert (reply.text, reply.complete, reply.parts) == ("TD ", False, 3)
    assert asm.pending == 0


def test_sar_tlvs() -> None:
    tlvs = {
        TLV_SAR_MSG_REF_NUM: b"\x01\x02",
        TLV_SAR_TOTAL_SEGMENTS: b"\x03",
        TLV_SAR_SEGMENT_SEQNUM: b"\x02",
    }
    assert concat_from_sar(tlvs) == Concat(0x0102, 3, 2)
    assert concat_from_sar({TLV_SAR_MSG_REF_NUM: b"\x01\x02"}) is None


@pytest.mark.parametrize(
    ("address", "ton", "expected"),
    [
        ("8613800138000", 1, "+8613800138000"),
        ("+8613800138000", 0, "+8613800138000"),
        ("008613800138000", 0, "+8613800138000"),
        ("8613800138000", 0, "+8613800138000"),
        ("13800138000", 0, "+8613800138000"),
        ("10086", 0, "10086"),
    ],
)
def test_normalise_msisdn(address: str, ton: int, expected: str) -> None:
    assert normalise_msisdn(address, ton, "86") == expected
