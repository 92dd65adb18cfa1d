"""Host driver: frames against hand-made ones, round trips, errors, HostLink over a fake transport."""

import pytest

from spikeforge.hdl.protocol import Status, crc8
from spikeforge.sim.host.driver import (
    DeviceError, HostLink, ProtocolError, Response, decode_response, encode_request,
    encode_response, split_responses,
)


def test_crc8_check_values():
    # CRC-8/SMBUS catalogue check value, and single bytes by the bitwise definition
    assert crc8(b"123456789") == 0xF4
    assert crc8(b"") == 0
    assert crc8(b"\x01") == 0x07
    assert crc8(b"\x80") == 0x89  # 0x80 << 1 overflows: 0x00 ^ 0x07, then 7 more shifts


def test_encode_request_hand_made():
    # 0xA5, cmd 0x12, len 3 (LE), payload, crc over cmd..payload
    frame = encode_request(0x12, b"\x01\x02\x03")
    assert frame[:4] == bytes([0xA5, 0x12, 0x03, 0x00])
    assert frame[4:7] == b"\x01\x02\x03"
    assert frame[7] == crc8(bytes([0x12, 3, 0, 1, 2, 3]))
    assert len(frame) == 8
    assert encode_request(0x00) == bytes([0xA5, 0, 0, 0, 0])
    long = encode_request(7, bytes(300))
    assert long[2:4] == (300).to_bytes(2, "little") == b"\x2c\x01"


def test_decode_response_hand_made():
    body = bytes([0x00, 0x21, 0x02, 0x00, 0xAB, 0xCD])
    frame = bytes([0x5A]) + body + bytes([crc8(body)])
    assert decode_response(frame) == Response(Status.OK, 0x21, b"\xab\xcd")
    bad = bytearray(frame)
    bad[5] ^= 1
    with pytest.raises(ProtocolError, match="CRC"):
        decode_response(bad)
    with pytest.raises(ProtocolError, match="starts with 0x5A"):
        decode_response(b"\xa5" + frame[1:])
    with pytest.raises(ProtocolError, match="declares"):
        decode_response(frame + b"\x00")
    with pytest.raises(ProtocolError, match="at least"):
        decode_response(frame[:3])


def test_round_trips_and_split():
    frames = [encode_response(s, c, p) for s, c, p in
              [(0, 1, b""), (3, 0x55, b"x" * 5), (0x12, 0xFF, bytes(range(256)) * 3)]]
    stream = b"".join(frames)
    got, rest = split_responses(stream + frames[0][:3])
    assert [(r.status, r.cmd, r.payload) for r in got] == \
        [(0, 1, b""), (3, 0x55, b"x" * 5), (0x12, 0xFF, bytes(range(256)) * 3)]
    assert rest == frames[0][:3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="cmd must be an integer from 0 to 255, not 256"):
        encode_request(256)
    with pytest.raises(ValueError, match="at most 65535 bytes, not 65536"):
        encode_request(1, bytes(65536))


#: a status from the core's range (>= 0x10), which the driver does not name
CORE_STATUS = 0x10


class FakeDevice:
    """A transport answering in Python: echoes cmd 1, rejects the rest (frames made by hand)."""

    def __init__(self):
        self.cycles = 0
        self.sent = []

    def exchange(self, data, frames, timeout_cycles):
        self.sent.append(bytes(data))
        assert data[0] == 0xA5 and frames == 1
        cmd, n = data[1], int.from_bytes(data[2:4], "little")
        payload = data[4:4 + n]
        status, out = (Status.OK, payload) if cmd == 1 else (Status.UNKNOWN_COMMAND, b"")
        if cmd == 9:
            status, out = CORE_STATUS, b"why"
        body = bytes([status, cmd]) + len(out).to_bytes(2, "little") + out
        if cmd == 8:  # answers another command's echo
            body = bytes([Status.OK, 7, 0, 0])
        self.cycles += 10
        return bytes([0x5A]) + body + bytes([crc8(body)]), 10

    def reset(self, cycles):
        pass

    def close(self):
        pass


def test_host_link_transact_and_errors():
    link = HostLink(FakeDevice())
    assert link.transact(1, b"abc") == b"abc"
    assert link.last_cycles == 10
    with pytest.raises(DeviceError) as info:
        link.transact(0x42, b"zz")
    assert info.value.status == Status.UNKNOWN_COMMAND and info.value.cmd == 0x42
    assert "UNKNOWN_COMMAND" in str(info.value) and "0x42" in str(info.value)
    with pytest.raises(DeviceError, match="0x10: why") as info:
        link.transact(9)
    assert info.value.message == "why"
    with pytest.raises(ProtocolError, match="echoes command 0x07"):
        link.transact(8)
    response = link.request(0x42)
    assert response.status == Status.UNKNOWN_COMMAND and not response.ok
