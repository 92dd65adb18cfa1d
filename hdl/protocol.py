"""The host protocol: framing constants, status codes, CRC-8 and the internal beat layout.

Shared by the RTL (:mod:`spikeforge.hdl.host_port`, the core's command decoder)
and the Python host driver (:mod:`spikeforge.sim.host.driver`), so that nobody packs
frames by hand. The framing (byte stream, little-endian):

* request (host -> device): ``0xA5``, ``cmd``, ``len`` (2 bytes), ``payload[len]``,
  ``crc`` over ``cmd``, ``len`` and ``payload``;
* response (device -> host): ``0x5A``, ``status``, ``cmd`` (echo), ``len`` (2 bytes),
  ``payload[len]``, ``crc`` over ``status``, ``cmd``, ``len`` and ``payload``.

The CRC is CRC-8 with polynomial 0x07, initial value 0x00, no reflection and no
final xor (the "CRC-8/SMBUS" parameters; check value 0xF4 on ``b"123456789"``).

Inside the device a request travels from the host port to the command decoder,
and a response back, as a stream of :data:`BEAT_LAYOUT` beats: ``data`` (a
byte), ``first`` (1 on the ``cmd`` / ``status`` beat) and ``last`` (1 on the
final beat of the request or response).

Status codes below 0x10 belong to the transport (:class:`Status`); codes from
0x10 up are the core's and are added to :class:`Status` in this module.
"""

from __future__ import annotations

import enum

from amaranth.lib import data

__all__ = [
    "REQUEST_SYNC", "RESPONSE_SYNC", "REQUEST_HEADER_BYTES", "RESPONSE_HEADER_BYTES",
    "CRC_BYTES", "MAX_LENGTH", "DEFAULT_MAX_PAYLOAD", "CRC8_POLY",
    "Status", "Command", "BEAT_LAYOUT", "crc8", "CRC8_TABLE",
]

#: First byte of a request frame.
REQUEST_SYNC = 0xA5
#: First byte of a response frame.
RESPONSE_SYNC = 0x5A
#: Bytes of a request before its payload: sync, cmd, len (2).
REQUEST_HEADER_BYTES = 4
#: Bytes of a response before its payload: sync, status, cmd, len (2).
RESPONSE_HEADER_BYTES = 5
#: Bytes after the payload (the CRC).
CRC_BYTES = 1
#: Largest value of the 16-bit ``len`` field.
MAX_LENGTH = 0xFFFF
#: Default payload buffer size of the host port (bytes, each direction).
DEFAULT_MAX_PAYLOAD = 1024
#: CRC-8 generator polynomial (x^8 + x^2 + x + 1), not reflected.
CRC8_POLY = 0x07


class Status(enum.IntEnum):
    """Status byte of a response. Codes >= 0x10 are the core's."""

    #: The command was carried out; the payload is its result.
    OK = 0x00
    #: The request's CRC did not match (answered by the host port; payload empty).
    BAD_CRC = 0x01
    #: The request declared ``len`` > the port's ``max_payload`` (answered by the
    #: host port at once, which then discards ``len + 1`` further bytes), or the
    #: core's response was longer than ``max_payload`` (the port answers this
    #: status instead of it). Payload empty.
    BAD_LENGTH = 0x02
    #: No such command (answered by the command decoder).
    UNKNOWN_COMMAND = 0x03
    #: The command's payload has the wrong size or a value out of range.
    BAD_ARGUMENT = 0x04
    #: The command is not allowed in the device's present state.
    BAD_STATE = 0x05


#: One beat of the internal request / response streams.
BEAT_LAYOUT = data.StructLayout({"data": 8, "first": 1, "last": 1})


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC8_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


#: CRC-8 (poly 0x07) of every single byte from a zero register.
CRC8_TABLE = _make_table()


def crc8(payload: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-8 (poly 0x07, init ``crc``, no reflection, no final xor) of ``payload``."""
    if not isinstance(crc, int) or not 0 <= crc <= 0xFF:
        raise ValueError(f"crc must be an integer from 0 to 255, not {crc!r}")
    for byte in bytes(payload):
        crc = CRC8_TABLE[crc ^ byte]
    return crc


class Command(enum.IntEnum):
    """Command codes of the core (payloads in ``docs/host-protocol.md``)."""

    INFO = 0x20
    SET_CONSTANTS = 0x21
    SET_LAYER = 0x22
    WRITE_WEIGHTS = 0x23
    READ_WEIGHTS = 0x24
    LOAD_SPIKES = 0x25
    RUN = 0x26
    UPDATE = 0x27
    READ_HISTORY = 0x28
    READ_GRADIENTS = 0x29
    READ_COUNTERS = 0x2A
