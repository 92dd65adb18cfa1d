"""The UART transport against a device model on a pseudo-terminal.

A thread plays the device on the master side of a pty: it parses request frames
itself (framing and CRC written here from docs/host-protocol.md, not with the
driver's encoder) and answers through the real :class:`HostLink`, in fragments,
late, or not at all.
"""

import os
import threading
import time

import pytest

serial = pytest.importorskip("serial")

from spikeforge.hdl.protocol import Status, crc8
from spikeforge.sim.host.driver import DeviceError, HostLink, TransportError, TransportTimeout
from spikeforge.sim.host.serial_transport import SerialTransport

REVERSE, SILENT, SLOW, FAIL = 0x31, 0x32, 0x33, 0x34


def response(status, cmd, payload):
    body = bytes([status, cmd]) + len(payload).to_bytes(2, "little") + payload
    return bytes([0x5A]) + body + bytes([crc8(body)])


class PtyDevice(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave
        self.requests = []
        self.stop = False

    def run(self):
        buf = b""
        while not self.stop:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            buf += chunk
            while True:
                start = buf.find(b"\xA5")
                if start < 0 or len(buf) - start < 4:
                    break
                length = int.from_bytes(buf[start + 2:start + 4], "little")
                end = start + 4 + length + 1
                if len(buf) < end:
                    break
                frame, buf = buf[start:end], buf[end:]
                cmd, payload = frame[1], frame[4:-1]
                assert crc8(frame[1:-1]) == frame[-1]
                self.requests.append((cmd, payload))
                self.answer(cmd, payload)

    def answer(self, cmd, payload):
        if cmd == REVERSE:
            os.write(self.master, response(Status.OK, cmd, payload[::-1]))
        elif cmd == SLOW:
            frame = response(Status.OK, cmd, payload)
            for k in range(0, len(frame), 3):           # fragments with pauses
                os.write(self.master, frame[k:k + 3])
                time.sleep(0.02)
        elif cmd == FAIL:
            os.write(self.master, response(Status.BAD_ARGUMENT, cmd, b"no such layer"))
        # SILENT: no answer

    def close(self):
        self.stop = True
        os.close(self._slave)
        os.close(self.master)


@pytest.fixture
def device():
    dev = PtyDevice()
    dev.start()
    yield dev
    dev.close()


def test_requests_and_responses_over_a_serial_port(device):
    with HostLink(SerialTransport(device.path, baud=115200, timeout_s=2.0)) as link:
        payload = bytes(range(200))
        assert link.transact(REVERSE, payload) == payload[::-1]
        assert link.transact(SLOW, b"abcdefghij") == b"abcdefghij"
        assert link.transact(REVERSE) == b""
        assert link.last_cycles is None
        with pytest.raises(DeviceError, match="BAD_ARGUMENT: no such layer"):
            link.transact(FAIL)
        # the link keeps working after an error response
        assert link.transact(REVERSE, b"\x01\x02") == b"\x02\x01"
    assert [cmd for cmd, _ in device.requests] == [REVERSE, SLOW, REVERSE, FAIL, REVERSE]
    assert device.requests[0][1] == payload


def test_silent_device_times_out_then_link_recovers(device):
    transport = SerialTransport(device.path, baud=115200, timeout_s=0.3, clock_hz=25e6)
    link = HostLink(transport)
    t0 = time.monotonic()
    with pytest.raises(TransportTimeout, match="no complete response") as info:
        link.request(SILENT, b"x", timeout_cycles=25_000_000 // 10)   # +0.1 s of device time
    waited = time.monotonic() - t0
    assert 0.4 <= waited < 2.0
    assert info.value.received == b""
    link.reset()
    assert link.transact(REVERSE, b"ok") == b"ko"
    link.close()
    with pytest.raises(TransportError, match="closed"):
        transport.exchange(b"\xA5", 1, 10)


def test_missing_port_is_one_sentence():
    with pytest.raises(TransportError) as info:
        SerialTransport("/dev/ttyNOSUCHPORT9", baud=115200)
    text = str(info.value)
    assert text.startswith("serial port /dev/ttyNOSUCHPORT9 cannot be opened")
    assert "\n" not in text


def test_bad_parameters():
    with pytest.raises(ValueError, match="baud must be a positive integer"):
        SerialTransport("loop://", baud=0)
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        SerialTransport("loop://", timeout_s=0)
