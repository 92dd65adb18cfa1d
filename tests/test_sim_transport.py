# amaranth: UnusedElaboratable=no
"""SimTransport end to end: the host driver on a Verilator model of HostPort + test handler."""

import time

import pytest
from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from host_echo import DELAY, ECHO, EMIT, INVERT, EchoTop
from spikeforge.hdl.protocol import Status
from spikeforge.sim.host.driver import DeviceError, HostLink, TransportError, TransportTimeout, \
    encode_request, split_responses
from spikeforge.sim.verilator.session import SimTransport, rtl_session

pytestmark = pytest.mark.verilator

MAX_PAYLOAD = 64  # same top as tests/test_host_port.py: one cached build


# the byte path (random stalls), the bulk path, and the bulk path with buffers smaller
# than a frame (transfers in pieces, the TX buffer drained while the device sends)
TRANSPORTS = {
    "bytes-stalled": dict(args={"tx_stall": 0.2}),
    "bulk": dict(),
    "bulk-small": dict(bulk_width=16, bulk_depth=32),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_transact_errors_and_reset_mid_frame(transport):
    with rtl_session(EchoTop(max_payload=MAX_PAYLOAD), name="host_echo",
                     **TRANSPORTS[transport]) as link:
        assert link.transact(ECHO, b"spikes") == b"spikes"
        assert link.transact(INVERT, b"\x00\x0f") == b"\xff\xf0"
        assert link.transact(EMIT, (MAX_PAYLOAD).to_bytes(2, "little")) == \
            bytes(range(MAX_PAYLOAD))
        with pytest.raises(DeviceError) as info:
            link.transact(0x66, b"?")
        assert (info.value.status, info.value.cmd) == (Status.UNKNOWN_COMMAND, 0x66)
        with pytest.raises(DeviceError) as info:
            link.transact(ECHO, bytes(MAX_PAYLOAD + 1))
        assert info.value.status == Status.BAD_LENGTH
        # the device computes for a while: cycles are counted by the simulation
        assert link.transact(DELAY, (5000).to_bytes(4, "little")) == b""
        assert 5000 <= link.last_cycles < 5100
        assert link.transact(ECHO, b"still in step") == b"still in step"

        # half a frame, then a reset: the device must come back clean
        transport = link.transport
        frame = encode_request(ECHO, b"never finished")
        data, _ = transport.exchange(frame[:7], 0, 1000)
        assert data == b""
        before = transport.cycles
        transport.reset(3)
        assert transport.cycles >= before + 3
        assert link.transact(ECHO, b"after reset") == b"after reset"

        # two frames back to back in one exchange
        data, _ = transport.exchange(encode_request(ECHO, b"a") + encode_request(0x55), 2, 10_000)
        got = [(r.status, r.cmd, r.payload) for r in split_responses(data)[0]]
        assert got == [(Status.OK, ECHO, b"a"), (Status.UNKNOWN_COMMAND, 0x55, b"")]

        # many frames in one exchange (more bytes than the small buffers hold)
        frames = b"".join(encode_request(ECHO, bytes([k]) * 40) for k in range(8))
        data, _ = transport.exchange(frames, 8, 100_000)
        got = [(r.status, r.payload) for r in split_responses(data)[0]]
        assert got == [(Status.OK, bytes([k]) * 40) for k in range(8)]

        # a cycle timeout leaves the simulation usable after a reset
        with pytest.raises(TransportTimeout, match="within 2000 cycles"):
            link.transact(DELAY, (100_000).to_bytes(4, "little"), timeout_cycles=2000)
        link.reset()
        assert link.transact(ECHO, b"ok") == b"ok"


def test_wall_clock_timeout_ends_the_simulation():
    transport = SimTransport(EchoTop(max_payload=MAX_PAYLOAD), name="host_echo",
                             wall_timeout_s=0.3, min_cycles_per_s=1e12)
    link = HostLink(transport)
    start = time.monotonic()
    with pytest.raises(TransportTimeout, match="gave no answer"):
        link.transact(DELAY, (50_000_000).to_bytes(4, "little"), timeout_cycles=60_000_000)
    assert time.monotonic() - start < 10
    with pytest.raises(TransportError, match="no longer answers"):
        link.transact(ECHO, b"x")
    transport.close()
    assert not transport._thread.is_alive()


class Babbler(wiring.Component):
    """A broken device: sends 0x00 bytes that are not response frames."""

    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        seen = Signal()
        with m.If(self.rx.valid):
            m.d.sync += seen.eq(1)
        m.d.comb += [self.rx.ready.eq(1), self.tx.valid.eq(seen), self.tx.payload.eq(0)]
        return m


def test_crashed_simulation_raises():
    with pytest.raises(TransportError, match=r"ended abnormally \(.*ProtocolError: a response frame starts with 0x5A, not 0x00\)"):
        with rtl_session(Babbler(), name="babbler") as link:
            link.transact(ECHO, b"hello")


@pytest.mark.parametrize("kw, message", [
    (dict(width=3), "width must be a power of two"),
    (dict(width=512), "width must be a power of two"),
    (dict(width=16, depth=40), "depth must be a positive multiple of width"),
    (dict(depth=0), "depth must be a positive multiple of width"),
])
def test_bulk_top_rejects_bad_buffer_sizes(kw, message):
    from spikeforge.sim.verilator.bulk_top import BulkTop
    with pytest.raises(ValueError, match=message):
        BulkTop(EchoTop(max_payload=MAX_PAYLOAD), **kw)
