"""SMPP 3.4 framing for the client session, on top of smpp34's codec.

submit_sm is encoded and deliver_sm decoded (with TLVs) by ``smpp34`` (Rust). Its
Python codec exposes no encoder for the session PDUs, so the few we need here are
written with ``struct``: the header-only ones (enquire_link, unbind, generic_nack and
their responses), bind_* (four C-strings and three bytes) and deliver_sm_resp. A
response body we read is at most one C-string (message_id / system_id).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from enum import IntEnum, StrEnum

import smpp34

HEADER = struct.Struct("!IIII")  # command_length, command_id, command_status, sequence_number
HEADER_LEN = HEADER.size
MAX_PDU_LEN = 64 * 1024  # far above any legal PDU; a larger length means a broken stream
MAX_SEQUENCE = 0x7FFFFFFF
RESPONSE_BIT = 0x80000000


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class BindMode(StrEnum):
    TRANSCEIVER = "transceiver"
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"

    @property
    def command(self) -> Command:
        return _BIND_COMMAND[self]

    @property
    def can_submit(self) -> bool:
        return self is not BindMode.RECEIVER


_BIND_COMMAND: Mapping[BindMode, Command] = {
    BindMode.TRANSCEIVER: Command.BIND_TRANSCEIVER,
    BindMode.TRANSMITTER: Command.BIND_TRANSMITTER,
    BindMode.RECEIVER: Command.BIND_RECEIVER,
}

ESME_ROK = 0x00
ESME_RINVCMDID = 0x03
ESME_RX_T_APPN = 0x64  # temporary: the SMSC should deliver this PDU again later
ESME_RX_P_APPN = 0x65  # permanent: do not deliver this PDU again


def header_only(command: int, sequence: int, status: int = ESME_ROK) -> bytes:
    return HEADER.pack(HEADER_LEN, command, status, sequence)


def with_body(command: int, sequence: int, body: bytes, status: int = ESME_ROK) -> bytes:
    return HEADER.pack(HEADER_LEN + len(body), command, status, sequence) + body


def _c_string(value: str, limit: int) -> bytes:
    raw = value.encode("ascii")
    if len(raw) >= limit:
        raise ValueError(f"{value!r} is longer than {limit - 1} characters")
    return raw + b"\x00"


def bind(
    mode: BindMode,
    sequence: int,
    *,
    system_id: str,
    password: str,
    system_type: str,
    addr_ton: int,
    addr_npi: int,
    address_range: str,
) -> bytes:
    """A bind_* request (SMPP 3.4 §4.1), interface_version 0x34."""
    body = (
        _c_string(system_id, 16)
        + _c_string(password, 9)
        + _c_string(system_type, 13)
        + bytes([0x34, addr_ton, addr_npi])
        + _c_string(address_range, 41)
    )
    return with_body(mode.command, sequence, body)


def deliver_sm_resp(sequence: int, status: int = ESME_ROK) -> bytes:
    return with_body(Command.DELIVER_SM_RESP, sequence, b"\x00", status)


def first_c_string(buffer: bytes | bytearray, start: int, end: int) -> str:
    """The C-string opening the response body of the PDU at ``buffer[start:end]``
    (message_id, system_id); '' if there is none."""
    body = start + HEADER_LEN
    stop = buffer.find(b"\x00", body, end)
    return buffer[body : end if stop < 0 else stop].decode("ascii", "replace")


def submit_sm(
    sequence: int,
    *,
    source: str,
    source_ton: int,
    source_npi: int,
    destination: str,
    dest_ton: int,
    dest_npi: int,
    payload: bytes,
    data_coding: int,
    esm_class: int,
    registered_delivery: int,
) -> bytes:
    return smpp34.SubmitSm(
        source,
        destination,
        payload,
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        dest_addr_ton=dest_ton,
        dest_addr_npi=dest_npi,
        esm_class=esm_class,
        registered_delivery=registered_delivery,
        data_coding=data_coding,
        sequence_number=sequence,
    ).encode()


def decode_deliver_sm(pdu: bytes) -> smpp34.DeliverSm:
    """Decode a deliver_sm; raises ``smpp34.SmppError`` (or ValueError) if malformed."""
    decoded = smpp34.decode(pdu)
    if not isinstance(decoded, smpp34.DeliverSm):
        raise ValueError(f"not a deliver_sm: {decoded!r}")
    return decoded
