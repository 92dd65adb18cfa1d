"""Host driver: speaks the host protocol to a spikeforge device over any transport.

:func:`encode_request` builds a request frame and :func:`decode_response`
checks and parses a response frame (layouts and constants from
:mod:`spikeforge.hdl.protocol`). :class:`HostLink` sends one request at a time
over a transport and returns the response payload, raising
:class:`DeviceError` when the device answers with a status other than ``OK``.

A transport provides ``exchange(data, frames, timeout_cycles) -> (bytes, cycles)``
(send ``data``, return the bytes of the next ``frames`` response frames and the
device cycles the exchange took, or raise :class:`TransportTimeout`),
``reset(cycles)``, ``cycles`` (device cycles since the transport started, or
``None`` where unknown) and ``close()``. :class:`~spikeforge.sim.verilator.session.SimTransport`
runs the device on Verilator; a UART transport uses the same driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikeforge.hdl.protocol import (
    CRC_BYTES, MAX_LENGTH, REQUEST_HEADER, REQUEST_SYNC, RESPONSE_HEADER, RESPONSE_HEADER_BYTES,
    RESPONSE_SYNC, Status, crc8, pack, unpack,
)

__all__ = [
    "Response", "ProtocolError", "DeviceError", "TransportError", "TransportTimeout",
    "encode_request", "decode_response", "response_frame_length", "split_responses",
    "status_name", "HostLink", "DEFAULT_TIMEOUT_CYCLES",
]

#: Default limit of device cycles for one transaction.
DEFAULT_TIMEOUT_CYCLES = 10_000_000


class ProtocolError(Exception):
    """A response frame is malformed (sync byte, length or CRC)."""


class TransportError(Exception):
    """The transport failed (simulation ended or crashed, link closed)."""


class TransportTimeout(TransportError):
    """No complete response within the allowed device cycles or wall-clock time."""


def status_name(status: int) -> str:
    """Symbolic name of a status code (``0x..`` for codes not in :class:`Status`)."""
    try:
        return Status(status).name
    except ValueError:
        return f"0x{status:02X}"


class DeviceError(Exception):
    """The device answered a request with a status other than ``OK``."""

    def __init__(self, status: int, cmd: int, message: str = ""):
        self.status = status
        self.cmd = cmd
        self.message = message
        text = f"device answered command 0x{cmd:02X} with {status_name(status)}"
        if message:
            text += f": {message}"
        super().__init__(text)


@dataclass(frozen=True)
class Response:
    """A decoded response frame."""

    status: int
    cmd: int
    payload: bytes

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


def _check_byte(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be an integer from 0 to 255, not {value!r}")


def encode_request(cmd: int, payload: bytes = b"") -> bytes:
    """The request frame carrying ``cmd`` and ``payload``."""
    _check_byte("cmd", cmd)
    payload = bytes(payload)
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"a request payload holds at most {MAX_LENGTH} bytes, "
                         f"not {len(payload)}")
    frame = pack(REQUEST_HEADER, {"sync": REQUEST_SYNC, "cmd": cmd, "len": len(payload)}) + payload
    return frame + bytes([crc8(frame[1:])])


def encode_response(status: int, cmd: int, payload: bytes = b"") -> bytes:
    """The response frame a device sends (for transports and tests of the driver)."""
    _check_byte("status", status)
    _check_byte("cmd", cmd)
    payload = bytes(payload)
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"a response payload holds at most {MAX_LENGTH} bytes, "
                         f"not {len(payload)}")
    frame = pack(RESPONSE_HEADER, {"sync": RESPONSE_SYNC, "status": status, "cmd": cmd,
                                   "len": len(payload)}) + payload
    return frame + bytes([crc8(frame[1:])])


def response_frame_length(buffer: bytes) -> int | None:
    """Total length of the response frame at the start of ``buffer``, or ``None``
    while its header is incomplete."""
    if buffer and buffer[0] != RESPONSE_SYNC:
        raise ProtocolError(f"a response frame starts with 0x{RESPONSE_SYNC:02X}, "
                            f"not 0x{buffer[0]:02X}")
    if len(buffer) < RESPONSE_HEADER_BYTES:
        return None
    return RESPONSE_HEADER_BYTES + unpack(RESPONSE_HEADER, buffer).len + CRC_BYTES


def decode_response(frame: bytes) -> Response:
    """Check and parse exactly one response frame."""
    frame = bytes(frame)
    total = response_frame_length(frame)
    if total is None:
        raise ProtocolError(f"a response frame is at least {RESPONSE_HEADER_BYTES + CRC_BYTES} "
                            f"bytes, not {len(frame)}")
    if len(frame) != total:
        raise ProtocolError(f"the response frame declares {total} bytes but {len(frame)} "
                            "were given")
    body = frame[1:-1]
    if crc8(body) != frame[-1]:
        raise ProtocolError(f"response CRC mismatch: frame says 0x{frame[-1]:02X}, "
                            f"bytes give 0x{crc8(body):02X}")
    header = unpack(RESPONSE_HEADER, frame)
    return Response(status=header.status, cmd=header.cmd, payload=frame[RESPONSE_HEADER_BYTES:-1])


def split_responses(buffer: bytes) -> tuple[list[Response], bytes]:
    """Decode the complete response frames at the start of ``buffer``; return them
    and the bytes left over (an incomplete frame)."""
    buffer = bytes(buffer)
    frames = []
    while buffer:
        total = response_frame_length(buffer)
        if total is None or len(buffer) < total:
            break
        frames.append(decode_response(buffer[:total]))
        buffer = buffer[total:]
    return frames, buffer


def _describe(payload: bytes) -> str:
    """An error response's payload as text when it is printable ASCII, else as hex."""
    if not payload:
        return ""
    if all(32 <= b < 127 for b in payload):
        return payload.decode("ascii")
    return "payload " + payload.hex()


class HostLink:
    """One request at a time over ``transport``; see the module docstring."""

    def __init__(self, transport):
        self.transport = transport
        #: device cycles taken by the last transaction (request in to response out)
        self.last_cycles: int | None = None

    def request(self, cmd: int, payload: bytes = b"", *,
                timeout_cycles: int = DEFAULT_TIMEOUT_CYCLES) -> Response:
        """Send one request and return its response, whatever the status."""
        frame = encode_request(cmd, payload)
        data, cycles = self.transport.exchange(frame, 1, timeout_cycles)
        self.last_cycles = cycles
        responses, rest = split_responses(data)
        if len(responses) != 1 or rest:
            raise ProtocolError(f"expected one response frame, got {len(responses)} "
                                f"and {len(rest)} stray byte(s)")
        response = responses[0]
        if response.cmd != cmd:
            raise ProtocolError(f"the response echoes command 0x{response.cmd:02X}, "
                                f"the request was 0x{cmd:02X}")
        return response

    def transact(self, cmd: int, payload: bytes = b"", *,
                 timeout_cycles: int = DEFAULT_TIMEOUT_CYCLES) -> bytes:
        """Send one request; return the payload of its ``OK`` response or raise
        :class:`DeviceError`."""
        response = self.request(cmd, payload, timeout_cycles=timeout_cycles)
        if response.status != Status.OK:
            raise DeviceError(response.status, cmd, _describe(response.payload))
        return response.payload

    def reset(self, cycles: int = 2) -> None:
        """Pulse the device reset (where the transport can)."""
        self.transport.reset(cycles)

    @property
    def cycles(self):
        return self.transport.cycles

    def close(self) -> None:
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
