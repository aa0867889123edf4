"""Receipt text and TLVs → Receipt."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.channels.base import Receipt
from echelon.channels.receipts import (
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    build_receipt,
    format_receipt_text,
    parse_receipt_fields,
    parse_receipt_time,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
TEXT = (
    "id:0123abc sub:001 dlvrd:001 submit date:2401151230 done date:2401151231 "
    "stat:DELIVRD err:000 text:【回声】会员日"
)


def receipt(text: str, tlvs: dict[int, bytes] | None = None) -> Receipt | None:
    return build_receipt(text, tlvs or {}, destination="+8613800138000", zone=SHANGHAI)


def test_parses_appendix_b_text() -> None:
    got = receipt(TEXT)
    assert got is not None
    assert got.provider_id == "0123abc"
    assert got.status == "delivered"
    assert got.error_code is None
    assert got.final
    assert got.submitted_at == datetime(2024, 1, 15, 4, 30, tzinfo=UTC)
    assert got.done_at == datetime(2024, 1, 15, 4, 31, tzinfo=UTC)
    assert got.raw == TEXT


@pytest.mark.parametrize(
    ("text", "status", "error"),
    [
        ("id:1 stat:UNDELIV err:MK:0001", "undelivered", "MK:0001"),  # 空号
        ("id:1 stat:UNDELIV err:MI:0054 text:x", "undelivered", "MI:0054"),
        ("id:1 stat:MK:0001 err:000", "undelivered", "MK:0001"),  # carrier code as stat
        ("id:1 stat:EXPIRED err:MK:0024", "expired", "MK:0024"),
        ("id:1 stat:REJECTD err:123", "rejected", "123"),
        ("id:1 stat:DELETED err:0", "undelivered", None),
        ("ID:1 STAT:delivrd ERR:000", "delivered", None),
        ("id:1 stat:ACCEPTD", "unknown", None),
        ("id:1", "unknown", None),
    ],
)
def test_stat_and_err(text: str, status: str, error: str | None) -> None:
    got = receipt(text)
    assert got is not None
    assert (got.status, got.error_code) == (status, error)


def test_enroute_is_not_final() -> None:
    got = receipt("id:7 stat:ENROUTE err:000")
    assert got is not None
    assert (got.status, got.final) == ("unknown", False)


def test_tlvs_win_over_text() -> None:
    got = receipt(
        "id:from-text stat:DELIVRD err:000",
        {TLV_RECEIPTED_MESSAGE_ID: b"from-tlv\x00", TLV_MESSAGE_STATE: b"\x05"},
    )
    assert got is not None
    assert (got.provider_id, got.status) == ("from-tlv", "undelivered")


def test_tlv_only_receipt_with_network_error() -> None:
    got = receipt(
        "",
        {
            TLV_RECEIPTED_MESSAGE_ID: b"abc\x00",
            TLV_MESSAGE_STATE: b"\x05",
            TLV_NETWORK_ERROR_CODE: b"\x03\x00\x01",
        },
    )
    assert got is not None
    assert (got.provider_id, got.status, got.error_code) == ("abc", "undelivered", "net3:1")


def test_receipt_without_any_id_is_none() -> None:
    assert receipt("stat:DELIVRD err:000") is None


@pytest.mark.parametrize("value", [None, "", "24011512", "2413151230", "abcdefghij"])
def test_unreadable_times_are_none(value: str | None) -> None:
    assert parse_receipt_time(value, SHANGHAI) is None


@given(
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=40),
    st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD"]),
    st.sampled_from(["000", "MK:0001", "MI:0054", "DB:0141", "006"]),
    # Hypothesis takes naive bounds and yields naive values (read as Shanghai local time).
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 1, 1)),
)
def test_format_then_parse_round_trips(
    provider_id: str, stat: str, err: str, when: datetime
) -> None:
    stamp = when.replace(microsecond=0).strftime("%y%m%d%H%M%S")
    text = format_receipt_text(provider_id, stat=stat, err=err, submitted=stamp, done=stamp)
    fields = parse_receipt_fields(text)
    assert fields["id"] == provider_id
    assert fields["err"] == err
    got = receipt(text)
    assert got is not None
    assert got.submitted_at == when.replace(microsecond=0, tzinfo=SHANGHAI).astimezone(UTC)
