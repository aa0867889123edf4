"""Delivery receipts: the SMPP 3.4 Appendix B text and the receipt TLVs, as ``Receipt``.

The text looks like ``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done
date:YYMMDDhhmm stat:DDDDDDD err:E text:...``; Chinese carriers put codes such as
``MK:0001`` (空号) in ``err`` or even in ``stat``, so a value runs up to the next known
key rather than to the next colon. TLVs (receipted_message_id 0x001E, message_state
0x0427, network_error_code 0x0423) win over the text when both are present.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from functools import lru_cache

from echelon.channels.base import Receipt, ReceiptStatus

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_STATE = 0x0427

# Receipt ``stat`` words → (status, final).
RECEIPT_STAT: Mapping[str, tuple[ReceiptStatus, bool]] = {
    "DELIVRD": ("delivered", True),
    "UNDELIV": ("undelivered", True),
    "EXPIRED": ("expired", True),
    "REJECTD": ("rejected", True),
    "DELETED": ("undelivered", True),
    "UNKNOWN": ("unknown", True),
    "ACCEPTD": ("unknown", True),
    "ENROUTE": ("unknown", False),
}
# message_state TLV values (SMPP 3.4 §5.2.28) → (status, final).
MESSAGE_STATE: Mapping[int, tuple[ReceiptStatus, bool]] = {
    1: ("unknown", False),  # ENROUTE
    2: ("delivered", True),
    3: ("expired", True),
    4: ("undelivered", True),  # DELETED
    5: ("undelivered", True),
    6: ("unknown", True),  # ACCEPTED
    7: ("unknown", True),
    8: ("rejected", True),
}

_KEY = re.compile(r"(?<!\S)(id|sub|dlvrd|submit date|done date|stat|err|text):", re.IGNORECASE)


def parse_receipt_fields(text: str) -> dict[str, str]:
    """The receipt's ``key → value`` pairs, keys lower-cased; unknown keys are kept in
    the value before them, so a colon inside a value (``err:MK:0001``) is harmless."""
    matches = list(_KEY.finditer(text))
    if not matches:
        return {}
    ends = [match.start() for match in matches[1:]]
    ends.append(len(text))
    fields: dict[str, str] = {}
    for match, end in zip(matches, ends, strict=True):
        key = match.group(1).lower()
        if key not in fields:  # the first wins: ``text:`` may quote anything
            fields[key] = text[match.end() : end].strip()
    return fields


def parse_receipt_time(value: str | None, zone: tzinfo) -> datetime | None:
    """``YYMMDDhhmm[ss]`` in the SMSC's zone → aware UTC datetime, None if unreadable."""
    if not value or not value.isdigit() or len(value) not in (10, 12):
        return None
    return _receipt_time(value, zone)


@lru_cache(maxsize=4096)  # receipts arriving together share their few distinct stamps
def _receipt_time(value: str, zone: tzinfo) -> datetime | None:
    try:
        local = datetime(
            2000 + int(value[0:2]),
            int(value[2:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]) if len(value) == 12 else 0,
            tzinfo=zone,
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


def _error_code(err: str | None) -> str | None:
    # "000" / "0" is the spec's "no error"; carrier codes like "MK:0001" pass unchanged.
    if err is None or err.strip("0") == "":
        return None
    return err


def _network_error(value: bytes | None) -> str | None:
    if value is None or len(value) != 3:
        return None
    code = int.from_bytes(value[1:], "big")
    return None if code == 0 else f"net{value[0]}:{code}"


def build_receipt(
    text: str,
    tlvs: Mapping[int, bytes],
    *,
    destination: str,
    zone: tzinfo,
) -> Receipt | None:
    """A ``Receipt`` from a receipt deliver_sm, or None when it names no message id."""
    fields = parse_receipt_fields(text)
    raw_id = tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
    provider_id = raw_id.rstrip(b"\x00").decode("ascii", "replace") if raw_id else fields.get("id")
    if not provider_id:
        return None
    stat = fields.get("stat", "").upper()
    error_code = _error_code(fields.get("err"))
    state = tlvs.get(TLV_MESSAGE_STATE)
    if state and state[0] in MESSAGE_STATE:
        status, final = MESSAGE_STATE[state[0]]
    elif stat in RECEIPT_STAT:
        status, final = RECEIPT_STAT[stat]
    elif stat:
        # A carrier code in place of the stat word (CMPP style): a failed delivery.
        status, final = "undelivered", True
        error_code = error_code or fields["stat"]
    else:
        status, final = "unknown", True
    if error_code is None and status != "delivered":
        error_code = _network_error(tlvs.get(TLV_NETWORK_ERROR_CODE))
    return Receipt(
        provider_id=provider_id,
        status=status,
        error_code=error_code,
        done_at=parse_receipt_time(fields.get("done date"), zone),
        submitted_at=parse_receipt_time(fields.get("submit date"), zone),
        raw=text,
        destination=destination,
        final=final,
    )


def format_receipt_text(
    provider_id: str, *, stat: str, err: str, submitted: str, done: str, text: str = ""
) -> str:
    """The Appendix B receipt text, as an SMSC (our simulator) writes it; the dates are
    already formatted ``YYMMDDhhmm[ss]`` in the SMSC's zone."""
    delivered = "001" if stat == "DELIVRD" else "000"
    return (
        f"id:{provider_id} sub:001 dlvrd:{delivered} submit date:{submitted} "
        f"done date:{done} stat:{stat} err:{err} text:{text[:20]}"
    )
